from __future__ import annotations

import random
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.naming import (
    CHANNEL_NAME_MAX_LENGTH,
    DISPLAY_NAME_MAX_RUNES,
    TemplateError,
    channel_slug,
    clean_display_name,
    format_seq,
    is_valid_channel_name,
    name_candidates,
    random_suffix,
    render_display_name,
    template_placeholders,
    validate_channel_template,
    with_suffix,
)

# The server's own regex (mattermost-api.md §4), kept here verbatim rather than imported, so a
# change in naming.py cannot silently weaken the test.
SERVER_RE = re.compile(r"^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$")
DM_LIKE = re.compile(r"^[a-z0-9]{26}__[a-z0-9]{26}$")
GM_LIKE = re.compile(r"^[0-9a-f]{40}$")


def assert_server_accepts(name: str) -> None:
    assert SERVER_RE.match(name), name
    assert 2 <= len(name) <= 64, name
    assert not name.endswith(("-", "_")), name
    assert not DM_LIKE.match(name) and not GM_LIKE.match(name), name
    assert is_valid_channel_name(name)


# --- template -------------------------------------------------------------------------------

def render(template: str, **overrides: object) -> str:
    values: dict[str, object] = dict(seq=42, name="Checkout returns 500", when=date(2025, 3, 1),
                                     owner="alice", playbook="Incident response")
    values.update(overrides)
    return render_display_name(template, **values)  # type: ignore[arg-type]


def test_format_seq_pads_to_three_digits() -> None:
    assert [format_seq(n) for n in (1, 42, 999, 1000, 12345)] == ["001", "042", "999", "1000", "12345"]


def test_render_every_placeholder() -> None:
    assert render("inc-{seq} {name} {date} {owner} {playbook}") == \
        "inc-042 Checkout returns 500 2025-03-01 alice Incident response"


def test_placeholders_are_case_insensitive_like_the_plugin() -> None:
    assert render("{SEQ} {Name}") == "042 Checkout returns 500"
    assert template_placeholders("{SEQ} { name }") == ["seq", "name"]


def test_values_are_inserted_once_not_expanded_again() -> None:
    assert render("{name}", name="{owner} {seq}") == "{owner} {seq}"


def test_date_is_the_utc_day_of_a_datetime() -> None:
    late = datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert render("{date}", when=late) == "2025-03-02"


def test_render_cleans_and_truncates() -> None:
    assert render("{name}", name="  two\nlines\t here ") == "two lines here"
    long = render("{seq} {name}", name="x" * 100)
    assert len(long) == DISPLAY_NAME_MAX_RUNES and long.endswith("\u2026")


def test_blank_render_falls_back_to_playbook_and_seq() -> None:
    assert render("{name}", name="   ") == "Incident response 042"


@pytest.mark.parametrize("template, fragment", [
    ("{nam}", 'unknown placeholder {nam}; use {seq}, {name}, {date}, {owner}, {playbook}; did you mean "{name}"?'),
    ("inc-{sequence} {name}", 'did you mean "{seq}"?'),
    ("{creator}", "unknown placeholder {creator}"),
    ("{}", "empty placeholder {}"),
    ("", "the template is empty"),
    ("   ", "the template is empty"),
    ("x" * 1025, "the limit is 1024"),
])
def test_bad_templates(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        validate_channel_template(template)
    assert fragment in str(info.value)


def test_good_templates_pass_unchanged() -> None:
    for template in ("{name}", "inc-{seq} {name}", "{date} {playbook} ({owner})", "no placeholders"):
        assert validate_channel_template(template) == template


def test_non_string_template() -> None:
    with pytest.raises(TemplateError, match="expected a text template"):
        validate_channel_template(5)


# --- display names --------------------------------------------------------------------------

def test_clean_strips_control_and_format_characters() -> None:
    # bidi override, zero-width space, BOM, NUL, bell: all stripped as the server does
    assert clean_display_name("a\u202eb\u200bc\ufeffd\x00e\x07f") == "abcdef"
    assert clean_display_name("  a \n\n b  ") == "a b"


def test_short_names_are_untouched() -> None:
    assert clean_display_name("Ошибка в оплате 🔥") == "Ошибка в оплате 🔥"
    assert clean_display_name("x" * 64) == "x" * 64


def test_truncation_prefers_a_word_boundary() -> None:
    name = clean_display_name("word " * 20)
    assert len(name) <= 64 and name.endswith("word\u2026")


def test_truncation_never_splits_a_combining_sequence() -> None:
    text = "e\u0301" * 40  # 80 runes: "é" as e + combining acute
    name = clean_display_name(text)
    assert len(name) <= 64
    body = name.rstrip("\u2026")
    assert body.endswith("e\u0301")


def test_truncation_never_splits_a_flag() -> None:
    name = clean_display_name("\U0001F1EB\U0001F1F7" * 40)  # 🇫🇷 x 40
    body = name.rstrip("\u2026")
    assert len(body) % 2 == 0


def test_truncation_keeps_skin_tones_with_their_emoji() -> None:
    name = clean_display_name("a" + "\U0001F44D\U0001F3FD" * 40)  # 👍🏽
    body = name.rstrip("\u2026")
    assert body.endswith("\U0001F3FD")


@given(st.text())
def test_any_input_gives_a_display_name_within_64_runes(text: str) -> None:
    name = clean_display_name(text)
    assert len(name) <= DISPLAY_NAME_MAX_RUNES
    assert name == name.strip()
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)


@given(st.text(), st.text(), st.integers(min_value=0, max_value=10**9))
def test_any_render_is_a_non_empty_display_name(name: str, owner: str, seq: int) -> None:
    result = render("inc-{seq} {name} {owner}", name=name, owner=owner, seq=seq)
    assert 0 < len(result) <= DISPLAY_NAME_MAX_RUNES


# --- URL names ------------------------------------------------------------------------------

@pytest.mark.parametrize("display, expected", [
    ("Checkout returns 500", "checkout-returns-500"),
    ("inc-042 Payment errors (EU)!", "inc-042-payment-errors-eu"),
    ("Café Müller — Straße", "cafe-muller-strasse"),
    ("Ошибка в оплате", "oshibka-v-oplate"),
    ("Ελληνικά", "ellinika"),
    ("Łódź Øresund", "lodz-oresund"),
    ("ﬁle ① Ｆｕｌｌ", "file-1-full"),
    ("snake_case name", "snake-case-name"),
    ("a__b", "a-b"),
])
def test_slug_examples(display: str, expected: str) -> None:
    assert channel_slug(display) == expected


@pytest.mark.parametrize("display", ["障害対応", "🔥🔥", "", "   ", "!!!", "\u200b"])
def test_untransliterable_names_get_a_stable_hash(display: str) -> None:
    slug = channel_slug(display)
    assert re.fullmatch(r"run-[a-z2-7]{8}", slug), slug
    assert channel_slug(display) == slug
    assert_server_accepts(slug)


def test_different_non_latin_names_get_different_slugs() -> None:
    assert channel_slug("障害対応") != channel_slug("障害報告")
    # Partly Latin: the Latin part stays readable, a hash keeps the names apart.
    a, b = channel_slug("障害対応 v2"), channel_slug("別件 v2")
    assert a.startswith("v2-") and b.startswith("v2-") and a != b


def test_single_character_names_are_lengthened_for_old_servers() -> None:
    slug = channel_slug("A")
    assert slug.startswith("a-") and len(slug) >= 2
    assert_server_accepts(slug)


def test_fallback_prefix() -> None:
    assert channel_slug("🔥", fallback_prefix="Incident").startswith("incident-")


def test_long_names_are_cut_at_a_word_boundary() -> None:
    slug = channel_slug("the quick brown fox jumps over the lazy dog " * 3)
    assert len(slug) <= 64 and not slug.endswith("-")
    assert slug.split("-")[-1] in "the quick brown fox jumps over the lazy dog".split()


def test_forty_hex_characters_are_not_a_group_message_name() -> None:
    slug = channel_slug("a" * 40)
    assert len(slug) == 40 and not GM_LIKE.match(slug)
    assert_server_accepts(slug)


def test_is_valid_channel_name() -> None:
    assert is_valid_channel_name("town-square")
    assert is_valid_channel_name("off_topic")
    for bad in ("", "a", "-a", "a-", "a_", "Town", "town square", "x" * 65, "a" * 26 + "__" + "b" * 26,
                "0123456789abcdef0123456789abcdef01234567"):
        assert not is_valid_channel_name(bad), bad


@given(st.text())
def test_any_input_gives_a_valid_channel_name(text: str) -> None:
    assert_server_accepts(channel_slug(text))


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=50, max_size=200))
def test_long_inputs_give_a_valid_channel_name(text: str) -> None:
    assert_server_accepts(channel_slug(text))


# --- collisions -----------------------------------------------------------------------------

def test_with_suffix() -> None:
    assert with_suffix("incident", 2) == "incident-2"
    assert with_suffix("incident", "x7k2") == "incident-x7k2"
    long = with_suffix("a" * 64, "x7k2")
    assert long == "a" * 59 + "-x7k2" and len(long) == 64


def test_with_suffix_cuts_at_a_word_boundary() -> None:
    slug = "-".join(["word"] * 13)[:64]  # 64 characters of "word-word-..."
    result = with_suffix(slug, "x7k2")
    assert len(result) <= 64 and "--" not in result and result.endswith("word-x7k2")


@pytest.mark.parametrize("suffix", ["", "X-1", "a b", "x" * 17])
def test_with_suffix_rejects_bad_suffixes(suffix: str) -> None:
    with pytest.raises(ValueError):
        with_suffix("incident", suffix)


def test_random_suffix() -> None:
    assert re.fullmatch(r"[a-z0-9]{4}", random_suffix())
    assert random_suffix(random.Random(1)) == random_suffix(random.Random(1))


def test_name_candidates() -> None:
    names = list(name_candidates("incident", numbered=2, random_tries=3, rng=random.Random(7)))
    assert names[:3] == ["incident", "incident-2", "incident-3"]
    assert len(names) == 6 and len(set(names)) == 6
    assert all(re.fullmatch(r"incident-[a-z0-9]{4}", n) for n in names[3:])


@given(st.text(), st.one_of(st.integers(min_value=2, max_value=10**6),
                            st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=16)))
def test_any_slug_with_any_suffix_stays_valid(text: str, suffix: object) -> None:
    name = with_suffix(channel_slug(text), suffix)  # type: ignore[arg-type]
    assert_server_accepts(name)
    assert len(name) <= CHANNEL_NAME_MAX_LENGTH
