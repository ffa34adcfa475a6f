"""Arguments of `/playbook` subcommands as people type them. Pure functions, no I/O.

- An item is named by its number as the checklist post shows it (`2.3`, 1-based), or by words of its
  title: every word must appear in the title (case-insensitively), and exactly one item may match.
- A checklist is named by its number (`2`) or by words of its title, the same way.
- A person is `@name` (or `name`, or `me`).
- `$vars` of an item's slash command come from the run summary: `key: value` lines or `$key=value`.

Every refusal is a typed result, not an exception, so the command can teach the right input.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from bot.domain.checklists import parse_item_number

# One argument longer than this is refused before any matching: nothing we name is that long, and
# comparing 10,000-character words against every title would be wasted work.
MAX_ARG = 200
MAX_TITLE = 256  # an item title added by command; the checklist post shows one line per item
MAX_MATCHES = 10  # choices listed when a reference is ambiguous

# Mattermost usernames: 3-22 characters of a-z 0-9 . - _ (we accept 1-64 and let the server decide).
_USERNAME = re.compile(r"^@?([a-z0-9][a-z0-9._-]{0,63})$", re.IGNORECASE)
_NUMBERLIKE = re.compile(r"^[0-9.\-+]+$")
_WORD = re.compile(r"\w+", re.UNICODE)
_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_KEY_VALUE = re.compile(r"^\s*\$?([A-Za-z_][A-Za-z0-9_]*)\s*(?::|=)\s*(.*?)\s*$")
_DOLLAR_ASSIGN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=(\S+)")

NOBODY = frozenset({"nobody", "none", "off", "unassign", "-"})


def fold(text: str) -> str:
    """Case- and accent-insensitive comparison form ("Café" and "cafe" match)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def shown(text: str, limit: int = 40) -> str:
    """A user's argument as we quote it back: one line, printable, bounded."""
    one_line = "".join(c if c.isprintable() else " " for c in text)
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


# -- items and checklists ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemAt:
    """0-based indexes of one item."""

    checklist: int
    item: int

    @property
    def number(self) -> str:
        return f"{self.checklist + 1}.{self.item + 1}"


@dataclass(frozen=True)
class Lookup:
    """The outcome of naming an item or a checklist.

    kind: "found" (one match in `found`), "ambiguous" (several in `matches`), "none" (no title matched),
    "out_of_range" (a number past the end), "bad" (not a reference at all; `problem` says why).
    """

    kind: str
    found: ItemAt | int | None = None
    matches: tuple[ItemAt | int, ...] = ()
    problem: str = ""
    query: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "found"


def _too_long(words: tuple[str, ...]) -> bool:
    return any(len(w) > MAX_ARG for w in words) or sum(len(w) for w in words) > MAX_ARG * 2


def _title_matches(query_words: list[str], title: str) -> bool:
    title_words = _WORD.findall(fold(title))
    # A word matches a whole word of the title, or the start of one once it has 3 characters ("ack"
    # finds "Acknowledge"). Not any substring: "all" must not find "call".
    return all(any(t == w or (len(w) >= 3 and t.startswith(w)) for t in title_words) for w in query_words)


def _query_words(words: tuple[str, ...]) -> list[str]:
    return [w for w in _WORD.findall(fold(" ".join(words)))]


def find_item(words: tuple[str, ...], checklists: list[list[str]]) -> Lookup:
    """The item `words` names, in checklists given as lists of item titles."""
    query = " ".join(words).strip()
    if not query:
        return Lookup("bad", problem="missing", query="")
    if _too_long(words):
        return Lookup("bad", problem="too_long", query=query)
    if len(words) == 1 and _NUMBERLIKE.match(words[0]):
        at = parse_item_number(words[0])
        if at is None:
            return Lookup("bad", problem="bad_number", query=query)
        c, i = at
        if c >= len(checklists) or i >= len(checklists[c]):
            return Lookup("out_of_range", query=query)
        return Lookup("found", ItemAt(c, i), query=query)
    qwords = _query_words(words)
    if not qwords:
        return Lookup("bad", problem="no_words", query=query)
    # An exact title wins over partial matches ("Deploy" vs "Deploy the fix").
    exact = [ItemAt(c, i) for c, titles in enumerate(checklists) for i, t in enumerate(titles)
             if fold(t).strip() == fold(query)]
    if len(exact) == 1:
        return Lookup("found", exact[0], query=query)
    hits = exact or [ItemAt(c, i) for c, titles in enumerate(checklists) for i, t in enumerate(titles)
                     if _title_matches(qwords, t)]
    if len(hits) == 1:
        return Lookup("found", hits[0], query=query)
    if not hits:
        return Lookup("none", query=query)
    return Lookup("ambiguous", matches=tuple(hits), query=query)


def find_checklist(word: str, titles: list[str]) -> Lookup:
    """A checklist named by its number (`2`) or by (words of) its title."""
    query = word.strip()
    if not query:
        return Lookup("bad", problem="missing", query="")
    if len(query) > MAX_ARG:
        return Lookup("bad", problem="too_long", query=query)
    if _NUMBERLIKE.match(query):
        if not query.isdigit() or len(query) > 4 or int(query) < 1:
            return Lookup("bad", problem="bad_checklist_number", query=query)
        index = int(query) - 1
        if index >= len(titles):
            return Lookup("out_of_range", query=query)
        return Lookup("found", index, query=query)
    exact = [i for i, t in enumerate(titles) if fold(t).strip() == fold(query)]
    if len(exact) == 1:
        return Lookup("found", exact[0], query=query)
    qwords = _query_words((query,))
    if not qwords:
        return Lookup("bad", problem="no_words", query=query)
    hits = exact or [i for i, t in enumerate(titles) if _title_matches(qwords, t)]
    if len(hits) == 1:
        return Lookup("found", hits[0], query=query)
    if not hits:
        return Lookup("none", query=query)
    return Lookup("ambiguous", matches=tuple(hits), query=query)


def split_checklist_and_title(args: tuple[str, ...], titles: list[str]) -> tuple[Lookup, str]:
    """`add <checklist> <title...>`: the longest leading words that are a whole checklist title win
    (so multi-word titles need no quotes), else the first word names the checklist."""
    for n in range(min(len(args) - 1, 8), 1, -1):
        words = " ".join(args[:n])
        if len(words) <= MAX_ARG and any(fold(t).strip() == fold(words) for t in titles):
            return find_checklist(words, titles), " ".join(args[n:]).strip()
    if not args:
        return Lookup("bad", problem="missing"), ""
    return find_checklist(args[0], titles), " ".join(args[1:]).strip()


# -- titles, people -----------------------------------------------------------------------------------

def clean_title(text: str) -> tuple[str, str]:
    """(title, problem): control and format characters go; blank or too long is a problem."""
    spaced = re.sub(r"\s+", " ", text)  # tabs and newlines are spaces: a title is one line
    title = "".join(c for c in spaced if unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs"))
    title = re.sub(r"\s+", " ", title).strip()
    if not title or not _WORD.search(title):
        return "", "empty"
    if len(title) > MAX_TITLE:
        return "", "too_long"
    return title, ""


@dataclass(frozen=True)
class PersonRef:
    """`@name` -> username; `me` -> self; `nobody` -> clear. `problem` when it is not a username."""

    username: str = ""
    me: bool = False
    nobody: bool = False
    problem: str = ""


def parse_person(text: str, *, allow_nobody: bool = False) -> PersonRef:
    raw = text.strip()
    if not raw:
        return PersonRef(problem="missing")
    if len(raw) > 65:
        return PersonRef(problem="too_long")
    low = raw.lower()
    if low in ("me", "@me"):
        return PersonRef(me=True)
    if low.lstrip("@") in NOBODY and allow_nobody:
        return PersonRef(nobody=True)
    match = _USERNAME.match(raw)
    if match is None:
        return PersonRef(problem="not_username")
    # Mattermost trims trailing . - _ when it resolves a mention ("@bob." is bob).
    name = match.group(1).lower().rstrip("._-")
    if name in ("all", "channel", "here"):
        return PersonRef(problem="group_mention")
    if not name:
        return PersonRef(problem="not_username")
    return PersonRef(username=name)


# -- slash command variables ---------------------------------------------------------------------------

def summary_variables(summary: str) -> dict[str, str]:
    """`key: value` / `key=value` lines and inline `$key=value` in the run summary, last one wins.

    Keys are case-sensitive, as in the plugin; empty values are left out (they count as undefined).
    """
    found: dict[str, str] = {}
    for line in summary.splitlines():
        match = _KEY_VALUE.match(line)
        if match and match.group(2):
            found[match.group(1)] = match.group(2)
        for inline in _DOLLAR_ASSIGN.finditer(line):
            found[inline.group(1)] = inline.group(2)
    return found


@dataclass(frozen=True)
class Expansion:
    command: str
    undefined: tuple[str, ...] = field(default_factory=tuple)


def expand_command(command: str, variables: dict[str, str]) -> Expansion:
    """Replace `$name` by its value; names without one are listed (in order, once) and left as typed."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        if name not in missing:
            missing.append(name)
        return match.group(0)

    # Single pass: a value containing `$x` is not expanded again.
    return Expansion(_VAR.sub(replace, command), tuple(missing))
