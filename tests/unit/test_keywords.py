"""Keyword triggers: what matches, and which patterns a playbook may hold (bounded so no post is slow)."""
from __future__ import annotations

import time

import pytest

from bot.domain.keywords import (
    BUDGET,
    MAX_SCANNED,
    PLAYBOOK_BUDGET,
    matcher,
    pattern_cost,
    pattern_problem,
    run_name_from,
)
from bot.playbooks import PlaybookInvalid
from bot.playbooks.export import to_plugin_json
from bot.playbooks.validation import parse_playbook


def test_words_match_whole_in_any_case_and_phrases_across_spaces() -> None:
    m = matcher(["outage", "db down"], [])
    assert m.search("Big OUTAGE now") == "OUTAGE"
    assert m.search("the DB  down again") == "DB  down"
    assert m.search("outages page") == "" and m.search("dbdown") == "" and m.search("db downtime") == ""


def test_patterns_match_in_any_case_and_only_the_head_of_a_long_post() -> None:
    m = matcher([], [r"error rate \d{1,3}%"])
    assert m.search("API Error Rate 45% now") == "Error Rate 45%"
    assert m.search("x " * MAX_SCANNED + "error rate 5%") == ""


@pytest.mark.parametrize("pattern, problem", [
    (r"(a+)+$", "repetition inside a repetition"),
    (r"(a|ab)*c", "alternation inside a repetition"),
    (r"\d+ .* down", "too long"),
    (r"a{0,99}a{0,99}b", "its repetitions multiply to 10000 and the limit is 2000"),
    (r".*x\d{1,5}", "too long"),
    (r"(x)\1", "back-reference"),
    (r"(?=a)b", "look-ahead"),
    (r"a*", "empty text"),
    (r"[", "not a regular expression"),
    ("x" * 201, "the limit is 200"),
])
def test_costly_or_broken_patterns_are_refused(pattern: str, problem: str) -> None:
    assert problem in pattern_problem(pattern)


def test_allowed_patterns_stay_fast_on_the_worst_text() -> None:
    for pattern in (r"error rate \d+%", r".*x", r"(outage|down) in \w+", r"\w{1,5}-\w{1,5}-\w{1,5}"):
        assert pattern_problem(pattern) == ""
        m = matcher([], [pattern])
        started = time.monotonic()
        m.search("a" * 50_000)
        assert time.monotonic() - started < 5  # generous: a few million steps at most


def test_two_long_bounded_repetitions_are_refused_and_the_playbooks_patterns_are_capped_together() -> None:
    # Each of these took a third of a second on a long post; ten of them, three seconds on one post.
    assert "too long" in pattern_problem(r"a{0,99}a{0,99}b")
    # Patterns each within BUDGET whose sum is not: refused at keywords.patterns, with the numbers.
    each = [rf"e{i} \d+" for i in range(5)]
    assert all(pattern_problem(p) == "" for p in each)
    with pytest.raises(PlaybookInvalid) as exc:
        _parse({"patterns": each, "channels": ["ops"]})
    text = "\n".join(str(e) for e in exc.value.errors)
    assert "keywords.patterns: together could take too long to search a long post (about 5.0 million steps" in text
    assert "the limit is 4 million" in text
    assert _parse({"patterns": each[:4], "channels": ["ops"]}) is not None


def test_the_worst_accepted_pattern_set_stays_within_tens_of_milliseconds_per_post() -> None:
    # The costliest shapes the budgets let through, as many as a playbook may hold: two bounded
    # repetitions back to back (the slowest per counted step), then fill up to PLAYBOOK_BUDGET.
    worst = [r"a{0,43}a{0,43}b", r"a{0,43}a{0,43}c", r"a{0,127}z"]
    assert all(pattern_problem(p) == "" for p in worst)
    assert all(pattern_cost(p) <= BUDGET for p in worst)
    assert sum(pattern_cost(p) for p in worst) <= PLAYBOOK_BUDGET
    assert _parse({"patterns": worst, "channels": ["ops"]}) is not None
    m = matcher([], worst)
    started = time.perf_counter()
    assert m.search("a" * 50_000) == ""
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, elapsed  # loose (a loaded machine): tens of ms when idle; was seconds before


def test_a_run_is_named_after_the_posts_first_line() -> None:
    assert run_name_from("\n\n## Checkout is down  \nmore") == "Checkout is down"
    assert run_name_from("word " * 100, limit=20).endswith("…")


def _parse(keywords: object) -> object:
    return parse_playbook({"title": "T", "keywords": keywords}, playbook_id="t", path="t.toml").keywords


def test_keywords_validate_with_problems_at_the_key() -> None:
    with pytest.raises(PlaybookInvalid) as exc:
        _parse({"words": ["outage", "Outage", ""], "patterns": ["(a+)+"], "channels": ["Bad Name"], "x": 1})
    text = "\n".join(str(e) for e in exc.value.errors)
    assert "keywords.words[2]: \"Outage\" is listed twice" in text
    assert "keywords.words[3]: must not be empty" in text
    assert "keywords.patterns[1]: \"(a+)+\": a repetition inside a repetition" in text
    assert "keywords.channels[1]" in text and "keywords.x" in text
    with pytest.raises(PlaybookInvalid) as exc:
        _parse({"words": ["outage"]})
    assert "keywords.channels: required" in str(exc.value.errors[0])
    assert _parse({"words": ["outage"], "enabled": False}) is not None  # kept without watching


def test_keywords_export_as_the_plugins_words() -> None:
    out = to_plugin_json({"title": "T", "keywords": {"words": ["outage"], "patterns": ["x\\d"], "channels": ["ops"]}})
    assert out["signal_any_keywords"] == ["outage"] and out["signal_any_keywords_enabled"] is True
