"""Retrospective metrics (the plugin's): a playbook declares up to four, each a duration, a currency
amount or a whole number, with an optional target. Values are stored as integers: milliseconds for
durations, cents for currency, the number itself for integers. Pure parsing and formatting, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from bot.domain.durations import DurationError, format_duration, parse_duration

METRIC_TYPES = ("duration", "currency", "integer")
METRICS_MAX = 4
# The largest value stored (a BIGINT holds 2^63 - 1); far beyond any real metric.
VALUE_MAX = 10**15
DURATION_MAX = timedelta(days=3650)

_CLOCK = re.compile(r"(\d{1,4}):(\d{1,2}):(\d{1,2})")  # dd:hh:mm, as the plugin's duration field
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_WHOLE = re.compile(r"[+-]?\d{1,16}")


class MetricValueError(ValueError):
    """A value that is not what its metric's type wants; str() says what to write instead."""


@dataclass(frozen=True)
class MetricSpec:
    title: str
    type: str  # duration | currency | integer
    description: str = ""
    target: int | None = None  # in the stored unit (ms, cents, number)

    def as_dict(self) -> dict[str, object]:
        return {"title": self.title, "type": self.type, "description": self.description, "target": self.target}

    @staticmethod
    def from_dict(raw: dict[str, object]) -> MetricSpec:
        target = raw.get("target")
        return MetricSpec(str(raw.get("title", "")), str(raw.get("type", "integer")), str(raw.get("description", "")),
                          int(target) if isinstance(target, int) else None)


def parse_value(kind: str, text: str) -> int:
    """A value typed by a person -> the stored integer; raises MetricValueError saying what is expected."""
    raw = text.strip()
    if kind == "duration":
        return _duration_ms(raw)
    if kind == "currency":
        return _cents(raw)
    if kind == "integer":
        if not _WHOLE.fullmatch(raw.replace(",", "")):
            raise MetricValueError(f'expected a whole number such as "12", got "{_shown(raw)}"')
        value = int(raw.replace(",", ""))
        if abs(value) > VALUE_MAX:
            raise MetricValueError(f"{value} is too large")
        return value
    raise MetricValueError(f"unknown metric type {kind!r}")


def _duration_ms(raw: str) -> int:
    clock = _CLOCK.fullmatch(raw)
    if clock:
        days, hours, minutes = (int(g) for g in clock.groups())
        if hours > 23 or minutes > 59:
            raise MetricValueError(f'"{raw}": in dd:hh:mm, hours go up to 23 and minutes up to 59')
        return ((days * 24 + hours) * 60 + minutes) * 60_000
    try:
        value = parse_duration(raw, minimum=timedelta(seconds=0), maximum=DURATION_MAX)
    except DurationError as exc:
        if raw in ("0", "00:00:00"):
            return 0
        raise MetricValueError(f'{exc}; or write days, hours and minutes as dd:hh:mm, like "00:01:30"') from exc
    return int(value.total_seconds() * 1000)


def _cents(raw: str) -> int:
    plain = raw.removeprefix("$").replace(",", "").strip()
    if not _DECIMAL.fullmatch(plain):
        raise MetricValueError(f'expected an amount such as "1250" or "99.95", got "{_shown(raw)}"')
    try:
        amount = Decimal(plain)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already refuses these
        raise MetricValueError(f'expected an amount such as "99.95", got "{_shown(raw)}"') from exc
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise MetricValueError(f'"{_shown(raw)}" has more than two decimals (cents)')
    cents = int(amount * 100)
    if abs(cents) > VALUE_MAX:
        raise MetricValueError(f'"{_shown(raw)}" is too large')
    return cents


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def format_value(kind: str, value: int | float | None) -> str:
    """A stored value for people: durations like "1h 30m" (dd:hh:mm precision), currency with two
    decimals, integers with thousands separators; "N/A" for no value."""
    if value is None:
        return "N/A"
    if kind == "duration":
        sign = "-" if value < 0 else ""
        minutes = int(abs(value)) // 60_000
        if minutes == 0:
            return f"{sign}0m" if abs(value) < 1000 else f"{sign}{int(abs(value)) // 1000}s"
        return sign + format_duration(timedelta(minutes=minutes))
    if kind == "currency":
        return f"{value / 100:,.2f}"
    return f"{int(value):,}"


def prefill(kind: str, value: int | None) -> str:
    """A stored value as the dialog shows it back (parse_value reads it again)."""
    if value is None:
        return ""
    if kind == "duration":
        minutes = value // 60_000
        return f"{minutes // 1440:02d}:{minutes // 60 % 24:02d}:{minutes % 60:02d}"
    if kind == "currency":
        return f"{Decimal(value) / 100:.2f}"
    return str(value)
