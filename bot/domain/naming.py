"""Run channel names: the display-name template, Mattermost's length limits and URL names.

Mattermost rules this module follows (mattermost-api.md §4 "Channels"):
- `display_name` is at most 64 runes (code points) and the server strips Unicode control and
  format characters from it, so we strip them first and count what the server will count;
- `name` (the URL name) must match `^[a-z0-9]+([a-z\\-\\_0-9]+|(__)?)[a-z0-9]*$`, be at most 64
  characters (the column is varchar(64); longer fails as a 5xx), must not look like a DM
  (`<26>__<26>`) or GM (40 hex characters) name, and on v9-era servers must be at least 2
  characters without a trailing `-`/`_`. We always produce names that satisfy the strictest
  of these, so one rule fits every server version.
- names are unique per team including archived channels, so callers try `name_candidates`.

Pure functions, no I/O.
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import random
import re
import secrets
import unicodedata
from datetime import date, datetime, timezone
from typing import Iterator

__all__ = [
    "DISPLAY_NAME_MAX_RUNES",
    "CHANNEL_NAME_MAX_LENGTH",
    "TEMPLATE_MAX_RUNES",
    "PLACEHOLDERS",
    "TemplateError",
    "format_seq",
    "template_placeholders",
    "validate_channel_template",
    "render_display_name",
    "clean_display_name",
    "channel_slug",
    "is_valid_channel_name",
    "with_suffix",
    "random_suffix",
    "name_candidates",
]

DISPLAY_NAME_MAX_RUNES = 64
CHANNEL_NAME_MAX_LENGTH = 64
# The plugin's limit for channel_name_template (playbooks-reference.md §8).
TEMPLATE_MAX_RUNES = 1024
PLACEHOLDERS = ("seq", "name", "date", "owner", "playbook")

SERVER_NAME_RE = re.compile(r"^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$")
_DM_LIKE_RE = re.compile(r"^[a-z0-9]{26}__[a-z0-9]{26}$")
_GM_LIKE_RE = re.compile(r"^[0-9a-f]{40}$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_ELLIPSIS = "\u2026"
_SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


# Names people reach for (some from other tools) and the placeholder they mean.
_ALIASES = {
    "sequence": "seq", "number": "seq", "num": "seq", "n": "seq", "counter": "seq", "id": "seq",
    "title": "name", "run": "name", "run_name": "name", "summary": "name",
    "day": "date", "today": "date", "start": "date", "created": "date",
    "creator": "owner", "commander": "owner", "lead": "owner", "user": "owner",
    "playbook_title": "playbook", "template": "playbook",
}


class TemplateError(ValueError):
    """A channel name template that cannot be used; str() says what is wrong and what is allowed."""


# --- the display-name template ----------------------------------------------------------------

def format_seq(seq: int) -> str:
    """The run's sequence number as shown in names: zero-padded to 3 digits ("007", "042", "1234").

    The plugin pads to 5 digits; 3 keeps more of the 64-rune display name for the run's name
    while still sorting well for the first thousand runs of a playbook.
    """
    return f"{seq:03d}"


def template_placeholders(template: str) -> list[str]:
    """The placeholder names used in a template, lower-cased, in order of appearance."""
    return [m.group(1).strip().lower() for m in _PLACEHOLDER_RE.finditer(template)]


def validate_channel_template(template: object) -> str:
    """Check a channel display-name template; return it unchanged or raise TemplateError.

    Placeholders are {seq} {name} {date} {owner} {playbook}, case-insensitive ({SEQ} works too,
    as in the Mattermost plugin). Any other {word} is an error, so typos show up when the
    playbook loads rather than in a channel name.
    """
    if not isinstance(template, str):
        raise TemplateError(f"expected a text template, got {type(template).__name__}")
    if not template.strip():
        raise TemplateError('the template is empty; use for example "{name}" or "inc-{seq} {name}"')
    if len(template) > TEMPLATE_MAX_RUNES:
        raise TemplateError(f"the template is {len(template)} characters long; the limit is {TEMPLATE_MAX_RUNES}")
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    for raw in template_placeholders(template):
        if raw in PLACEHOLDERS:
            continue
        if not raw:
            raise TemplateError(f"empty placeholder {{}}; use one of {allowed}")
        close = difflib.get_close_matches(raw, PLACEHOLDERS, n=1, cutoff=0.6)
        guess = _ALIASES.get(raw) or (close[0] if close else None)
        hint = f'; did you mean "{{{guess}}}"?' if guess else ""
        raise TemplateError(f"unknown placeholder {{{raw}}}; use {allowed}{hint}")
    return template


def render_display_name(template: str, *, seq: int, name: str, when: date | datetime,
                        owner: str, playbook: str) -> str:
    """Fill a validated template and make it a valid display name (≤64 runes, no control chars).

    {date} is the UTC date of `when` (YYYY-MM-DD); {owner} is the owner's username. Values are
    inserted once, so a run named "{owner}" stays literally "{owner}". If the result is blank
    (for example "{name}" with no name), "<playbook> <seq>" is used instead.
    """
    if isinstance(when, datetime):
        day = (when.astimezone(timezone.utc) if when.tzinfo else when).date()
    else:
        day = when
    values = {
        "seq": format_seq(seq),
        "name": name,
        "date": day.isoformat(),
        "owner": owner,
        "playbook": playbook,
    }

    def fill(match: re.Match[str]) -> str:
        key = match.group(1).strip().lower()
        if key not in values:
            raise TemplateError(f"unknown placeholder {{{key}}}")
        return values[key]

    result = clean_display_name(_PLACEHOLDER_RE.sub(fill, template))
    if not result:
        result = clean_display_name(f"{playbook} {format_seq(seq)}") or f"Run {format_seq(seq)}"
    return result


# --- display names --------------------------------------------------------------------------

def _strip_invisible(text: str) -> str:
    # Whitespace controls become spaces; other control (Cc), format (Cf: bidi overrides,
    # zero-width characters, tags) and lone surrogates (Cs) go, as the server strips them.
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace():
            out.append(" ")
        elif cat in ("Cc", "Cf", "Cs"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def _extends_previous(ch: str) -> bool:
    """Whether ch belongs to the grapheme before it (combining marks, variation selectors,
    emoji skin tones), so a cut must not fall just before it."""
    return unicodedata.category(ch) in ("Mn", "Mc", "Me") or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _safe_cut(text: str, limit: int) -> int:
    """The largest index ≤ limit that does not split a grapheme (approximately: Python has no
    grapheme segmentation; this covers combining marks, skin tones and flag pairs)."""
    if len(text) <= limit:
        return len(text)
    cut = limit
    while cut > 0 and _extends_previous(text[cut]):
        cut -= 1
    # Flags are pairs of regional indicators: never keep half of one.
    run = 0
    while run < cut and _is_regional_indicator(text[cut - 1 - run]):
        run += 1
    if run % 2 == 1 and _is_regional_indicator(text[cut]):
        cut -= 1
    return cut


def clean_display_name(text: str, limit: int = DISPLAY_NAME_MAX_RUNES) -> str:
    """Strip what the server strips, collapse whitespace and shorten to `limit` runes.

    A shortened name ends with "…", cut at a word boundary when one is near the end and never
    in the middle of an accented letter, emoji with skin tone or flag.
    """
    text = " ".join(_strip_invisible(text).split())
    if len(text) <= limit:
        return text
    room = limit - 1  # for the ellipsis
    cut = _safe_cut(text, room)
    space = text.rfind(" ", 0, cut + 1)
    if space > 0 and cut - space <= 16:
        cut = space
    head = text[:cut].rstrip()
    if not head:
        # Pathological input (one letter with dozens of combining marks): cut hard.
        head = text[:room]
    return head + _ELLIPSIS


# --- URL names ------------------------------------------------------------------------------

# Letters NFKD does not decompose into ASCII, and the Cyrillic and Greek alphabets, so common
# names keep a readable URL ("Ошибка в оплате" -> "oshibka-v-oplate"). Other scripts (CJK,
# Arabic, ...) have no short faithful transliteration; those names get a stable hash instead.
_TRANSLIT = {
    "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o",
    "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th",
    "ı": "i", "ħ": "h", "Ħ": "h", "ŋ": "ng", "Ŋ": "ng", "ĸ": "k", "ſ": "s",
}
_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяієїґў",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "i", "ye",
     "yi", "g", "u"],
    strict=True,
))
_GREEK = dict(zip(
    "αβγδεζηθικλμνξοπρσςτυφχψω",
    ["a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p", "r", "s",
     "s", "t", "y", "f", "ch", "ps", "o"],
    strict=True,
))


def _transliterate(text: str) -> tuple[str, bool]:
    """ASCII approximation of text, and whether any letter or digit had to be dropped."""
    out = []
    dropped = False
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        if ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
            continue
        lower = ch.lower()
        base = unicodedata.normalize("NFKD", lower)
        # Greek and Cyrillic with accents (ά, й is handled above) decompose to a base letter.
        key = base[0] if base else lower
        if lower in _CYRILLIC or key in _CYRILLIC:
            out.append(_CYRILLIC.get(lower, _CYRILLIC.get(key, "")))
            continue
        if key in _GREEK:
            out.append(_GREEK[key])
            continue
        ascii_part = "".join(c for c in base if c.isascii())
        if ascii_part:
            out.append(ascii_part)
        elif unicodedata.category(ch)[0] in ("L", "N"):
            dropped = True
            out.append(" ")
        else:
            out.append(" ")
    return "".join(out), dropped


def _stable_hash(text: str, length: int) -> str:
    digest = hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8", "surrogatepass")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]


def _cut_slug(slug: str, limit: int) -> str:
    if len(slug) <= limit:
        return slug
    head = slug[:limit]
    hyphen = head.rfind("-")
    # Cut at a word boundary when one is near, so names do not end in half a word.
    if hyphen > 0 and limit - hyphen <= 12:
        head = head[:hyphen]
    return head.strip("-")


def channel_slug(display_name: str, *, max_length: int = CHANNEL_NAME_MAX_LENGTH,
                 fallback_prefix: str = "run") -> str:
    """A channel URL name for a display name; always valid on every server version.

    Latin accents are folded ("Café" -> "cafe"), Cyrillic and Greek transliterated, every run of
    other characters becomes one "-". If letters in other scripts had to be dropped, a 6-character
    stable hash of the display name is appended so different names stay different
    ("障害対応 v2" -> "v2-<hash>"); if nothing usable is left, the result is
    "<fallback_prefix>-<hash>" ("🔥🔥" -> "run-<hash>"). The same input always gives the same name.
    """
    if max_length < 12:
        raise ValueError("max_length must be at least 12 to leave room for a hash")
    ascii_text, dropped = _transliterate(_strip_invisible(display_name))
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    prefix = re.sub(r"[^a-z0-9]+", "-", fallback_prefix.lower()).strip("-") or "run"
    if not slug:
        slug = f"{prefix[:max_length - 9]}-{_stable_hash(display_name, 8)}"
    elif dropped or len(slug) < 2:
        tag = _stable_hash(display_name, 6)
        slug = f"{_cut_slug(slug, max_length - len(tag) - 1)}-{tag}"
    slug = _cut_slug(slug, max_length)
    if _GM_LIKE_RE.match(slug):
        # 40 hex characters is what Mattermost calls group messages; change the last one.
        slug = slug[:-1] + "x"
    return slug


def is_valid_channel_name(name: str) -> bool:
    """Whether every supported server accepts `name` as a channel URL name."""
    return (
        2 <= len(name) <= CHANNEL_NAME_MAX_LENGTH
        and SERVER_NAME_RE.match(name) is not None
        and not name.endswith(("-", "_"))
        and not _DM_LIKE_RE.match(name)
        and not _GM_LIKE_RE.match(name)
    )


def with_suffix(slug: str, suffix: str | int, *, max_length: int = CHANNEL_NAME_MAX_LENGTH) -> str:
    """`slug-suffix`, shortening the slug so the whole stays within max_length ("incident-2")."""
    tail = str(suffix).lower()
    if not re.fullmatch(r"[a-z0-9]+", tail) or len(tail) > 16:
        raise ValueError(f"a name suffix must be 1-16 lowercase letters or digits, got {suffix!r}")
    base = _cut_slug(slug, max_length - len(tail) - 1).strip("-_")
    return f"{base}-{tail}" if base else tail.rjust(2, "0")


def random_suffix(rng: random.Random | None = None, length: int = 4) -> str:
    """A short random suffix like "x7k2" (36^4 ≈ 1.7 million values)."""
    if rng is None:
        return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))
    return "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(length))


def name_candidates(slug: str, *, numbered: int = 3, random_tries: int = 5,
                    rng: random.Random | None = None) -> Iterator[str]:
    """Names to try in order when creating a channel: "slug", "slug-2" … "slug-<numbered+1>",
    then `random_tries` names with a random suffix ("slug-x7k2"). Channel names stay reserved by
    archived channels, so a long-lived playbook soon needs the random ones."""
    yield slug
    for n in range(2, numbered + 2):
        yield with_suffix(slug, n)
    for _ in range(random_tries):
        yield with_suffix(slug, random_suffix(rng))
