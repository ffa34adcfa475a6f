"""Scheduled runs, the pure part: a playbook's `[schedule]` cron expression and time zone, its occurrences,
and the run name each occurrence gets. No I/O; handlers/schedules.py starts the runs.

The cron expression is the classic five fields (minute hour day-of-month month weekday), read by
APScheduler 3.11's `CronTrigger.from_crontab` after two corrections:

- weekday numbers follow crontab (0 and 7 = Sunday, 1 = Monday), not APScheduler 3's own numbering
  (0 = Monday; its docs call this a historical mistake, APScheduler issue 286): the weekday field is
  rewritten with names before APScheduler reads it;
- a day of the month and a weekday cannot both be restricted: crontab runs on either, APScheduler only
  on both, so such an expression is refused instead of quietly meaning something else.

Daylight saving time, in the schedule's zone:
- a wall-clock time that does not exist (spring forward: 02:30 in Europe/Berlin on the last Sunday of
  March) happens once, at the same distance after the gap (03:30 local): CronTrigger's behaviour;
- a wall-clock time that exists twice (fall back: 02:30 on the last Sunday of October) happens once, at
  its first instance: CronTrigger gives both, the second is dropped here. So an hourly schedule has no
  run in the repeated hour.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import jinja2
from apscheduler.triggers.cron import CronTrigger

from bot.domain.templating import SafeEnvironment

FIELDS = ("minute", "hour", "day", "month", "day_of_week")
FIELD_WORDS = {"minute": "minute", "hour": "hour", "day": "day-of-month", "month": "month",
               "day_of_week": "weekday"}
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's numbering: 0 = Sunday
# APScheduler's weekday names, in its order (0 = Monday), for writing a set of days back.
_APS_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXAMPLE = '"0 9 * * MON" (09:00 every Monday)'
DEFAULT_NAME = "{{ playbook }} {{ date }}"
NAME_VARIABLES = ("date", "time", "datetime", "weekday", "month", "year", "week", "timezone", "playbook", "at")
# How far back the latest occurrence is looked for (weekly and monthly schedules included).
LOOKBACK = timedelta(days=400)
_MAX_STEPS = 20_000  # occurrences walked through in one search, at most


class ScheduleError(ValueError):
    """A cron expression, a time zone or a name template that cannot be used; the text says why."""


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("Europe/Berlin", "UTC")."""
    try:
        if name.strip() != name or not name or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        names = sorted(_zone_names())
        same = [n for n in names if n.lower() == name.lower()]
        close = same or difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else ' such as "Europe/Berlin", "America/New_York" or "UTC"'
        raise ScheduleError(f'"{name}" is not an IANA time zone name{hint}') from None


def _weekday_number(token: str) -> int:
    low = token.lower()
    if low in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(low)
    if low.isdigit() and 0 <= int(low) <= 7:
        return int(low) % 7
    raise ScheduleError(f'"{token}" is not a weekday: use 0-7 (0 and 7 are Sunday) or a name such as MON')


def _weekdays(field: str) -> str:
    """The crontab weekday field as APScheduler reads it: "*", or a comma list of its weekday names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f'"{part}": the step after "/" must be a whole number from 1')
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _weekday_number(a), _weekday_number(b)
            if b.strip() in ("7",):
                last = 7
            if last < first:
                raise ScheduleError(f'"{base}": a range goes from the earlier day to the later one '
                                    '(Sunday is 0 at the start of a range, 7 at its end)')
        else:
            first = _weekday_number(base)
            last = 7 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(name for name in _APS_ORDER if WEEKDAY_NAMES.index(name) in days)


def parse_cron(expression: str, tz: ZoneInfo | None = None) -> CronTrigger:
    """A CronTrigger for a five-field crontab expression in `tz` (default UTC); ScheduleError naming the
    field that is wrong."""
    values = expression.split()
    if len(values) != 5:
        raise ScheduleError(f'expected 5 fields (minute hour day-of-month month weekday), like {EXAMPLE}; '
                            f'"{expression}" has {len(values)}')
    for name, value in zip(FIELDS[:4], values[:4], strict=True):
        try:
            CronTrigger(**{name: value}, timezone=timezone.utc)
        except ValueError as exc:
            raise ScheduleError(f'the {FIELD_WORDS[name]} field "{value}" is not valid: {exc}') from None
    try:
        weekday = _weekdays(values[4])
    except ScheduleError as exc:
        raise ScheduleError(f'the weekday field "{values[4]}" is not valid: {exc}') from None
    if values[2] not in ("*", "?") and weekday != "*":
        raise ScheduleError(f'give a day of the month ("{values[2]}") or a weekday ("{values[4]}"), not both: '
                            'crontab would run on either, APScheduler only on both; use two playbooks, or "*" '
                            'for one of them')
    try:
        return CronTrigger.from_crontab(" ".join([*values[:4], weekday]), timezone=tz or timezone.utc)
    except ValueError as exc:
        raise ScheduleError(f'"{expression}" is not a cron expression APScheduler accepts: {exc}') from None


def _repeat(at: datetime, tz: ZoneInfo) -> bool:
    """Whether `at` is the second instance of a wall-clock time that happens twice (fall back)."""
    wall = at.astimezone(tz).replace(tzinfo=None)
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != wall:
        return False  # the wall time does not exist (spring forward): no earlier instance
    return first.astimezone(timezone.utc) < at.astimezone(timezone.utc)


def occurrences(trigger: CronTrigger, after_ms: int) -> Iterator[int]:
    """The schedule's occurrences strictly after `after_ms` (epoch ms), in order, each once."""
    tz = trigger.timezone
    start = datetime.fromtimestamp(after_ms / 1000, tz=timezone.utc) + timedelta(milliseconds=1)
    previous = None
    now = start.astimezone(tz)
    for _ in range(_MAX_STEPS):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            return
        previous = now = fire
        if isinstance(tz, ZoneInfo) and _repeat(fire, tz):
            continue
        yield int(fire.timestamp() * 1000)


def next_occurrence(trigger: CronTrigger, after_ms: int) -> int | None:
    """The first occurrence strictly after `after_ms`, or None (an expression that never fires)."""
    return next(occurrences(trigger, after_ms), None)


def latest_occurrence(trigger: CronTrigger, now_ms: int, floor_ms: int) -> int | None:
    """The latest occurrence in [floor_ms, now_ms], or None. Looks back in growing windows, so a
    minutely schedule costs a few steps and a yearly one a few more."""
    floor_ms = max(floor_ms, now_ms - int(LOOKBACK.total_seconds() * 1000))
    window = 3_600_000
    upper = now_ms
    while upper >= floor_ms:
        lower = max(floor_ms, now_ms - window)
        found = None
        for at in occurrences(trigger, lower - 1):
            if at > upper:
                break
            found = at
        if found is not None:
            return found
        if lower == floor_ms:
            return None
        upper = lower - 1
        window *= 4
    return None


# --- the run's name -----------------------------------------------------------------------------------

_ENV = SafeEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def name_values(at_ms: int, tz: ZoneInfo, playbook_title: str) -> dict[str, Any]:
    """What a name template may use, for the occurrence at `at_ms` seen in `tz`."""
    local = datetime.fromtimestamp(at_ms / 1000, tz=tz)
    return {"date": local.strftime("%Y-%m-%d"), "time": local.strftime("%H:%M"),
            "datetime": local.strftime("%Y-%m-%d %H:%M"), "weekday": local.strftime("%A"),
            "month": local.strftime("%B"), "year": str(local.year), "week": f"{local.isocalendar().week:02d}",
            "timezone": str(tz.key), "playbook": playbook_title, "at": local}


def render_name(template: str, at_ms: int, tz: ZoneInfo, playbook_title: str) -> str:
    """The run name for the occurrence at `at_ms`: the template rendered in a sandbox, on one line."""
    try:
        text = _ENV.from_string(template).render(**name_values(at_ms, tz, playbook_title))
    except jinja2.TemplateError as exc:
        raise ScheduleError(_template_problem(exc)) from None
    return " ".join(text.split())


def check_name_template(template: str) -> None:
    """ScheduleError when the template cannot render (bad syntax, an unknown variable, a refused call)."""
    render_name(template, 1_767_225_600_000, ZoneInfo("UTC"), "Playbook")


def _template_problem(exc: jinja2.TemplateError) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"{exc.message}; the name may use {', '.join(NAME_VARIABLES)}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"is not a valid template: {exc.message} (line {exc.lineno})"
    return f"cannot be rendered: {exc}"


def describe(expression: str, tz_name: str) -> str:
    """How a schedule is named in words for a run's timeline: "the schedule (0 9 * * MON, Europe/Berlin)"."""
    return f"the schedule ({' '.join(expression.split())}, {tz_name})"
