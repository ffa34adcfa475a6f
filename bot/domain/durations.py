"""Durations and due dates as people type them: `30m`, `1h30m`, `2 days`, `off`, `2025-03-01`.

The contract (contracts.md) is `<n><unit>` with units s, m, h, d, w, combinable largest first
(`1h30m`). We also accept spaces between the parts and the spelled-out unit words that
`format_duration` prints ("2 days", "1h 30m"), so anything the bot shows can be typed back.

Pure functions, no clock: callers pass `now`.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

__all__ = [
    "DurationError",
    "MAX_DURATION",
    "OFF_WORDS",
    "parse_duration",
    "parse_duration_or_off",
    "format_duration",
    "format_duration_compact",
    "parse_due",
    "EARLIEST_DUE",
    "LATEST_DUE",
    "due_in_range",
]

# One year. Longer values are almost always a typo (`300d` meant `30d`), and this keeps every
# result far below what datetime arithmetic and APScheduler can hold.
MAX_DURATION = timedelta(days=365)

# The moments a due date may name. Python parses years 1..9999 with any offset, but such a moment
# may not convert to UTC (0001-01-01T00:00+01:00 is before datetime.min) and is never meant.
EARLIEST_DUE = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_DUE = datetime(9000, 1, 1, tzinfo=timezone.utc)

# Words that mean "no reminder" where a reminder may be off.
OFF_WORDS = frozenset({"off", "none", "never"})

_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNIT_ORDER = "wdhms"
_UNIT_WORDS = {
    "w": ("w", "wk", "wks", "week", "weeks"),
    "d": ("d", "day", "days"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "s": ("s", "sec", "secs", "second", "seconds"),
}
_WORD_TO_UNIT = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_UNIT_NAMES = {"w": "week", "d": "day", "h": "hour", "m": "minute", "s": "second"}
# Longest words first so "mins" is not read as "m" + "ins".
_PART = re.compile(
    r"\s*(\d+)\s*(" + "|".join(sorted(_WORD_TO_UNIT, key=len, reverse=True)) + r")(?![a-z])\s*"
)
_EXAMPLES = '"30m", "1h30m" or "2d"'


class DurationError(ValueError):
    """A duration or due date that cannot be used; str() is a sentence fit to show the user."""


def _describe(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    # Messages are one line: show control characters escaped, as Python would.
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    return f'"{shown}"'


def parse_duration(text: str, *, minimum: timedelta = timedelta(seconds=1),
                   maximum: timedelta = MAX_DURATION) -> timedelta:
    """Parse `<n><unit>` parts (units s, m, h, d, w, largest first) into a positive timedelta.

    Raises DurationError for empty text, garbage, a missing unit, decimals, repeated or
    out-of-order units, zero or negative values and anything outside [minimum, maximum].
    """
    if not isinstance(text, str):
        raise DurationError(f"expected a duration such as {_EXAMPLES}, got {type(text).__name__}")
    raw = text.strip().lower()
    if not raw:
        raise DurationError(f"expected a duration such as {_EXAMPLES}, got an empty value")
    if raw.startswith("-"):
        raise DurationError(f"a duration must be positive, got {_describe(text)}")
    if raw in OFF_WORDS:
        raise DurationError(f"a duration is required here ({_EXAMPLES}); {_describe(text)} is not allowed")
    if re.fullmatch(r"\d+", raw):
        raise DurationError(
            f'{_describe(text)} has no unit; write for example "{raw}m" for minutes or "{raw}h" for hours'
        )
    if re.search(r"\d[.,]\d", raw):
        raise DurationError(
            f'{_describe(text)} has a decimal number; combine whole units instead, like "1h30m"'
        )
    total = 0
    pos = 0
    last_rank = -1
    seen: set[str] = set()
    while pos < len(raw):
        match = _PART.match(raw, pos)
        if match is None:
            raise DurationError(
                f"{_describe(text)} is not a duration; use a number and a unit "
                f"(s, m, h, d or w) such as {_EXAMPLES}"
            )
        unit = _WORD_TO_UNIT[match.group(2)]
        rank = _UNIT_ORDER.index(unit)
        if unit in seen:
            raise DurationError(f"{_describe(text)} uses the unit {_UNIT_NAMES[unit]}s twice")
        if rank < last_rank:
            raise DurationError(
                f'{_describe(text)}: write the largest unit first, like "1h30m"'
            )
        seen.add(unit)
        last_rank = rank
        digits = match.group(1)
        # Guard before int(): a thousand-digit number must not cost anything.
        if len(digits.lstrip("0")) > 12:
            raise DurationError(f"{_describe(text)} is longer than the maximum of {format_duration(maximum)}")
        total += int(digits) * _UNIT_SECONDS[unit]
        pos = match.end()
    if total <= 0:
        raise DurationError(f"a duration must be longer than zero, got {_describe(text)}")
    value = timedelta(seconds=total)
    if value > maximum:
        raise DurationError(f"{_describe(text)} is longer than the maximum of {format_duration(maximum)}")
    if value < minimum:
        raise DurationError(f"{_describe(text)} is shorter than the minimum of {format_duration(minimum)}")
    return value


def parse_duration_or_off(text: str, *, minimum: timedelta = timedelta(seconds=1),
                          maximum: timedelta = MAX_DURATION) -> timedelta | None:
    """Like parse_duration, but "off" (or "none", "never") gives None."""
    if isinstance(text, str) and text.strip().lower() in OFF_WORDS:
        return None
    try:
        return parse_duration(text, minimum=minimum, maximum=maximum)
    except DurationError as exc:
        raise DurationError(f'{exc} (or "off" for none)') from None


def _split(seconds: int) -> list[tuple[str, int]]:
    parts = []
    days, seconds = divmod(seconds, 86_400)
    # Weeks only when the days are whole weeks: "10 days" reads better than "1w 3d".
    if days:
        parts.append(("w", days // 7) if days % 7 == 0 else ("d", days))
    for unit in "hms":
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append((unit, count))
    return parts


def format_duration(value: timedelta) -> str:
    """A duration for people: one unit spelled out ("2 days", "30 minutes", "1 week"),
    several units compact ("1h 30m", "1d 2h"). Fractions of a second are dropped.
    Negative values get a leading minus; zero is "0 seconds"."""
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "-" + format_duration(timedelta(seconds=-seconds))
    parts = _split(seconds)
    if not parts:
        return "0 seconds"
    if len(parts) == 1:
        unit, count = parts[0]
        name = _UNIT_NAMES[unit]
        return f"{count} {name}" + ("" if count == 1 else "s")
    return " ".join(f"{count}{unit}" for unit, count in parts)


def format_duration_compact(value: timedelta) -> str:
    """The canonical `<n><unit>` form ("1h30m", "2d"), as written in playbook files."""
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "-" + format_duration_compact(timedelta(seconds=-seconds))
    parts = _split(seconds)
    return "".join(f"{count}{unit}" for unit, count in parts) or "0s"


def due_in_range(moment: datetime, raw: str) -> datetime:
    """`moment` (naive = UTC) as an aware UTC datetime, if it lies between EARLIEST_DUE and
    LATEST_DUE; else DurationError naming `raw` as typed."""
    try:
        utc = _as_utc(moment)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_DUE <= utc < LATEST_DUE:
        raise DurationError(f"{_describe(raw)} is out of range: a due date lies between the years "
                            f"{EARLIEST_DUE.year} and {LATEST_DUE.year - 1}")
    return utc


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are read as UTC: the bot stores and compares UTC throughout.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_due(text: str, now: datetime, *, allow_off: bool = False,
              allow_past: bool = False) -> datetime | None:
    """A due date typed in a command, as an aware UTC datetime.

    Accepts a duration from `now` ("2h", "1d"), an ISO date ("2025-03-01", meaning 00:00 UTC that
    day) or an ISO date-time ("2025-03-01T14:00", "2025-03-01 14:00", with an optional offset or
    "Z"; without one it is UTC). With allow_off, "off"/"none" returns None (clears a due date).
    A moment before `now` is refused unless allow_past.
    """
    if not isinstance(text, str) or not text.strip():
        raise DurationError('expected a due date: a duration like "2h" or a date like "2025-03-01"')
    raw = text.strip()
    now = _as_utc(now)
    if raw.lower() in OFF_WORDS:
        if allow_off:
            return None
        raise DurationError(f'expected a due date like "2h" or "2025-03-01", got {_describe(raw)}')
    if re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        due = _parse_iso(raw)
    else:
        if not re.search(r"\d", raw):
            raise DurationError(
                f'{_describe(raw)} is not a due date; use a duration like "2h" or a date like "2025-03-01"'
            )
        due = now + parse_duration(raw)
    if due < now and not allow_past:
        raise DurationError(f"{_describe(raw)} is in the past")
    return due


def _parse_iso(raw: str) -> datetime:
    text = raw.replace(" ", "T", 1) if re.match(r"^\d{4}-\d{2}-\d{2} \d", raw) else raw
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(0, 0), tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise DurationError(
            f'{_describe(raw)} is not a valid date; use "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM" (UTC)'
        ) from None
    return due_in_range(moment, raw)
