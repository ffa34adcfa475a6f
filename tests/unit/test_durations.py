from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.durations import (
    MAX_DURATION,
    DurationError,
    format_duration,
    format_duration_compact,
    parse_due,
    parse_duration,
    parse_duration_or_off,
)

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("30s", timedelta(seconds=30)),
    ("15m", timedelta(minutes=15)),
    ("2h", timedelta(hours=2)),
    ("1d", timedelta(days=1)),
    ("2w", timedelta(weeks=2)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
    ("1h 30m", timedelta(hours=1, minutes=30)),
    ("  45M ", timedelta(minutes=45)),
    ("2 days", timedelta(days=2)),
    ("1 hour 15 minutes", timedelta(hours=1, minutes=15)),
    ("90mins", timedelta(minutes=90)),
    ("0h30m", timedelta(minutes=30)),
    ("365d", MAX_DURATION),
])
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("", "empty value"),
    ("   ", "empty value"),
    ("30", 'no unit; write for example "30m"'),
    ("1.5h", 'combine whole units instead, like "1h30m"'),
    ("30m1h", "largest unit first"),
    ("1h1h", "hours twice"),
    ("0m", "longer than zero"),
    ("0h0m", "longer than zero"),
    ("-5m", "must be positive"),
    ("abc", "is not a duration"),
    ("1y", "is not a duration"),
    ("5 parsecs", "is not a duration"),
    ("1h30", "is not a duration"),
    ("h", "is not a duration"),
    ("366d", "longer than the maximum of 365 days"),
    ("53w", "longer than the maximum"),
    ("9" * 400 + "s", "longer than the maximum"),
    ("off", "is not allowed"),
])
def test_parse_duration_rejects_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(DurationError, match="expected a duration"):
        parse_duration(30)  # type: ignore[arg-type]


def test_parse_duration_minimum_and_maximum() -> None:
    with pytest.raises(DurationError, match="shorter than the minimum of 1 minute"):
        parse_duration("30s", minimum=timedelta(minutes=1))
    with pytest.raises(DurationError, match="longer than the maximum of 1 hour"):
        parse_duration("2h", maximum=timedelta(hours=1))


@pytest.mark.parametrize("word", ["off", "OFF", " none ", "never"])
def test_off_where_allowed(word: str) -> None:
    assert parse_duration_or_off(word) is None


def test_or_off_still_validates_and_mentions_off() -> None:
    assert parse_duration_or_off("24h") == timedelta(hours=24)
    with pytest.raises(DurationError, match=r'"off"'):
        parse_duration_or_off("zero")


@pytest.mark.parametrize("value, text", [
    (timedelta(seconds=0), "0 seconds"),
    (timedelta(seconds=1), "1 second"),
    (timedelta(seconds=45), "45 seconds"),
    (timedelta(minutes=30), "30 minutes"),
    (timedelta(hours=1), "1 hour"),
    (timedelta(hours=1, minutes=30), "1h 30m"),
    (timedelta(days=2), "2 days"),
    (timedelta(days=10), "10 days"),
    (timedelta(weeks=1), "1 week"),
    (timedelta(weeks=2, hours=3), "2w 3h"),
    (timedelta(days=1, seconds=5), "1d 5s"),
    (timedelta(minutes=-5), "-5 minutes"),
    (timedelta(seconds=90.7), "1m 30s"),
])
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_format_duration_compact() -> None:
    assert format_duration_compact(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration_compact(timedelta(days=14)) == "2w"
    assert format_duration_compact(timedelta(0)) == "0s"


durations = st.integers(min_value=1, max_value=int(MAX_DURATION.total_seconds())).map(
    lambda s: timedelta(seconds=s))


@given(durations)
def test_formatted_durations_parse_back(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value
    assert parse_duration(format_duration_compact(value)) == value


@given(st.text(max_size=40))
def test_garbage_gives_a_duration_or_a_duration_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except DurationError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert timedelta(0) < value <= MAX_DURATION


# --- due dates ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2h", NOW + timedelta(hours=2)),
    ("1d", NOW + timedelta(days=1)),
    ("2025-02-01", datetime(2025, 2, 1, tzinfo=timezone.utc)),
    ("2025-02-01T14:30", datetime(2025, 2, 1, 14, 30, tzinfo=timezone.utc)),
    ("2025-02-01 14:30", datetime(2025, 2, 1, 14, 30, tzinfo=timezone.utc)),
    ("2025-02-01T14:30Z", datetime(2025, 2, 1, 14, 30, tzinfo=timezone.utc)),
    ("2025-02-01T14:30:00+02:00", datetime(2025, 2, 1, 12, 30, tzinfo=timezone.utc)),
])
def test_parse_due(text: str, expected: datetime) -> None:
    due = parse_due(text, NOW)
    assert due == expected
    assert due is not None and due.tzinfo is not None and due.utcoffset() == timedelta(0)


def test_parse_due_accepts_a_naive_now_as_utc() -> None:
    assert parse_due("1h", NOW.replace(tzinfo=None)) == NOW + timedelta(hours=1)


def test_parse_due_off() -> None:
    assert parse_due("off", NOW, allow_off=True) is None
    with pytest.raises(DurationError, match="expected a due date"):
        parse_due("off", NOW)


@pytest.mark.parametrize("text, fragment", [
    ("", "expected a due date"),
    ("soon", "is not a due date"),
    ("2025-13-01", "is not a valid date"),
    ("2025-02-30", "is not a valid date"),
    ("2025-02-01T25:00", "is not a valid date"),
    ("2025-01-01", "is in the past"),
    ("0m", "longer than zero"),
    ("400d", "longer than the maximum"),
    ("0001-01-01T00:00:00+01:00", "out of range"),
    ("9999-12-31T23:59:59-01:00", "out of range"),
    ("9000-01-01", "out of range"),
])
def test_parse_due_rejects(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_due(text, NOW)
    assert fragment in str(info.value)


def test_parse_due_allows_the_past_when_asked() -> None:
    assert parse_due("2025-01-01", NOW, allow_past=True) == datetime(2025, 1, 1, tzinfo=timezone.utc)
