"""Aggregate insights over runs: pure computations, no I/O (storage/insights.py fetches the rows).

The definitions are in each function's docstring: times are UTC milliseconds, windows are `[start, end)`,
durations are summarised as median, p90 and mean (a mean alone misleads on skewed durations), and a
change against an empty previous window is "new", never a division by zero or an integer truncation.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
WINDOW_DAYS = 30
WEEKS = 12


@dataclass(frozen=True)
class RunStats:
    """One run as insights see it: the run's row and the aggregates of its timeline."""

    run_id: str
    name: str
    playbook_id: str
    playbook_title: str
    team_id: str
    owner_id: str
    status: str  # in_progress | finished
    created_at: int
    started_at: int | None = None  # the first run_started (None: use created_at)
    finished_at: int | None = None  # the last run_finished
    first_update_at: int | None = None  # the earliest status_updated
    last_update_at: int | None = None
    first_action_at: int | None = None  # the first human action (see storage/insights.py)
    reminder_interval_s: int = 0
    retrospective_enabled: bool = False
    retro_published_at: int | None = None  # the first retrospective_published
    retro_cancelled: bool = False
    reminders_sent: int = 0
    overdue_items: int = 0  # due before now, neither closed nor skipped
    update_gaps: int = 0  # gaps between consecutive updates (start -> first, first -> second, ...)
    update_gaps_on_time: int = 0  # of those, the ones no longer than the interval

    @property
    def start(self) -> int:
        return self.started_at if self.started_at is not None else self.created_at


# --- summaries ---------------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True)
class Durations:
    """Durations (ms) summarised; `without` counts the runs that have no such duration (kept apart,
    not dropped)."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None
    without: int = 0


def summarize(values: Sequence[float], without: int = 0) -> Durations:
    mean = sum(values) / len(values) if values else None
    return Durations(len(values), median(values), percentile(values, 90), mean, without)


def time_to_finish(runs: Iterable[RunStats]) -> Durations:
    """First run_started to last run_finished, finished runs only."""
    return summarize([max(0, r.finished_at - r.start) for r in runs
                      if r.status == "finished" and r.finished_at is not None])


def time_to_first_update(runs: Iterable[RunStats]) -> Durations:
    """run_started to the earliest status_updated; runs with none are counted in `without`."""
    values, without = [], 0
    for r in runs:
        if r.first_update_at is None:
            without += 1
        else:
            values.append(max(0, r.first_update_at - r.start))
    return summarize(values, without)


def time_to_first_action(runs: Iterable[RunStats]) -> Durations:
    """run_started to the first item change, status update, assignment or command by a person (not the
    bot); runs with none are counted in `without`."""
    values, without = [], 0
    for r in runs:
        if r.first_action_at is None:
            without += 1
        else:
            values.append(max(0, r.first_action_at - r.start))
    return summarize(values, without)


# --- punctuality ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Punctuality:
    runs: int  # runs with a status-update interval
    gaps: int
    on_time: int
    overdue_now: int  # runs in progress whose next update is late now
    overdue_run_ids: tuple[str, ...]
    reminders_sent: int

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.gaps if self.gaps else None


def update_overdue(run: RunStats, now: int) -> bool:
    """In progress, with an interval, and now past (last update, or the start) + interval."""
    if run.status != "in_progress" or run.reminder_interval_s <= 0:
        return False
    last = run.last_update_at if run.last_update_at is not None else run.start
    return now > last + run.reminder_interval_s * 1000


def punctuality(runs: Iterable[RunStats], now: int) -> Punctuality:
    counted = [r for r in runs if r.reminder_interval_s > 0]
    overdue = tuple(r.run_id for r in counted if update_overdue(r, now))
    return Punctuality(runs=len(counted), gaps=sum(r.update_gaps for r in counted),
                       on_time=sum(r.update_gaps_on_time for r in counted), overdue_now=len(overdue),
                       overdue_run_ids=overdue, reminders_sent=sum(r.reminders_sent for r in counted))


# --- counts over time ----------------------------------------------------------------------------------

def week_start(at_ms: int) -> int:
    """The Sunday 00:00 UTC starting the week of `at_ms` (the plugin's weeks)."""
    day = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).replace(hour=0, minute=0, second=0,
                                                                         microsecond=0)
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)  # Monday is 0, Sunday 6
    return int(sunday.timestamp() * 1000)


@dataclass(frozen=True)
class WeekCount:
    start: int  # Sunday 00:00 UTC, ms
    count: int

    @property
    def end(self) -> int:
        return self.start + WEEK_MS


def started_per_week(runs: Iterable[RunStats], now: int, weeks: int = WEEKS) -> list[WeekCount]:
    """Runs created in each of the last `weeks` weeks (the current one last), by created_at."""
    last = week_start(now)
    starts = [last - (weeks - 1 - i) * WEEK_MS for i in range(weeks)]
    counts = Counter(week_start(r.created_at) for r in runs if r.created_at >= starts[0])
    return [WeekCount(s, counts.get(s, 0)) for s in starts]


@dataclass(frozen=True)
class Change:
    current: int
    previous: int

    @property
    def percent(self) -> float | None:
        """(cur - prev) / prev * 100 in floating point; None when prev = 0 (shown as "new")."""
        if self.previous == 0:
            return None
        return (self.current - self.previous) / self.previous * 100

    @property
    def text(self) -> str:
        if self.previous == 0:
            return "new" if self.current else "no change"
        return format_percent(self.percent)


def format_percent(value: float | None) -> str:
    if value is None:
        return "N/A"
    rounded = round(value, 1)
    if rounded == 0:
        return "no change"
    return f"{int(rounded):+d}%" if rounded == int(rounded) else f"{rounded:+.1f}%"


def finished_in_window(runs: Iterable[RunStats], now: int, days: int = WINDOW_DAYS) -> Change:
    """Runs finished (by their last run_finished) in the last `days` days, against the `days` before."""
    cur_start, prev_start = now - days * DAY_MS, now - 2 * days * DAY_MS
    cur = prev = 0
    for r in runs:
        if r.status != "finished" or r.finished_at is None:
            continue
        if cur_start <= r.finished_at < now:
            cur += 1
        elif prev_start <= r.finished_at < cur_start:
            prev += 1
    return Change(cur, prev)


def in_progress(runs: Iterable[RunStats]) -> int:
    return sum(1 for r in runs if r.status == "in_progress")


@dataclass(frozen=True)
class OverdueItems:
    items: int
    runs: int


def overdue_items(runs: Iterable[RunStats]) -> OverdueItems:
    """Items due before now and neither closed nor skipped, in runs in progress."""
    counts = [r.overdue_items for r in runs if r.status == "in_progress" and r.overdue_items]
    return OverdueItems(sum(counts), len(counts))


# --- retrospectives --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetroCompletion:
    eligible: int  # finished in the window with the retrospective enabled
    published: int
    declined: int  # retrospective_cancelled
    time_to_publish: Durations  # run_finished -> retrospective_published (0 when published before)

    @property
    def share(self) -> float | None:
        return self.published / self.eligible if self.eligible else None

    @property
    def outstanding(self) -> int:
        return self.eligible - self.published - self.declined


def retro_completion(runs: Iterable[RunStats], now: int, days: int = WINDOW_DAYS) -> RetroCompletion:
    start = now - days * DAY_MS
    eligible = [r for r in runs if r.status == "finished" and r.retrospective_enabled
                and r.finished_at is not None and start <= r.finished_at < now]
    published = [r for r in eligible if r.retro_published_at is not None]
    declined = sum(1 for r in eligible if r.retro_published_at is None and r.retro_cancelled)
    waits = [max(0, r.retro_published_at - r.finished_at) for r in published
             if r.retro_published_at is not None and r.finished_at is not None]
    return RetroCompletion(len(eligible), len(published), declined, summarize(waits))


# --- what to change in the playbook ---------------------------------------------------------------

@dataclass(frozen=True)
class TitleCount:
    title: str
    count: int  # runs


def top_titles(pairs: Iterable[tuple[str, str]], limit: int = 10) -> list[TitleCount]:
    """(run id, item title) pairs -> the titles in most runs, most first (ties by title)."""
    runs_by_title: dict[str, set[str]] = defaultdict(set)
    for run_id, title in pairs:
        runs_by_title[title.strip()].add(run_id)
    ranked = sorted(runs_by_title.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [TitleCount(t, len(ids)) for t, ids in ranked[:limit]]


# --- top playbooks and breakdowns -------------------------------------------------------------------

@dataclass(frozen=True)
class TopPlaybook:
    playbook_id: str
    title: str
    today: int
    days7: int
    days28: int
    last_run_at: int


def day_start(now: int, tz: tzinfo | None = None) -> int:
    moment = datetime.fromtimestamp(now / 1000, tz=tz or timezone.utc)
    return int(moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def top_playbooks(runs: Iterable[RunStats], now: int, tz: tzinfo | None = None,
                  limit: int = 10) -> list[TopPlaybook]:
    """Runs created since the start of today, today-6 days and today-27 days (in `tz`), per playbook,
    ranked by the 28-day count; `last_run_at` is the latest created_at."""
    today = day_start(now, tz)
    since7, since28 = today - 6 * DAY_MS, today - 27 * DAY_MS
    rows: dict[str, list[int]] = {}
    titles: dict[str, str] = {}
    for r in runs:
        row = rows.setdefault(r.playbook_id, [0, 0, 0, 0])
        titles.setdefault(r.playbook_id, r.playbook_title or r.playbook_id)
        row[0] += r.created_at >= today
        row[1] += r.created_at >= since7
        row[2] += r.created_at >= since28
        row[3] = max(row[3], r.created_at)
    ranked = sorted(rows.items(), key=lambda kv: (-kv[1][2], -kv[1][3], kv[0]))
    return [TopPlaybook(pid, titles[pid], *counts) for pid, counts in ranked if counts[2]][:limit]


@dataclass(frozen=True)
class Breakdown:
    key: str  # owner id, team id or playbook id
    total: int
    in_progress: int
    finished: int
    time_to_finish: Durations


def breakdown(runs: Iterable[RunStats], key: str) -> list[Breakdown]:
    """Runs grouped by `key` ("owner_id", "team_id" or "playbook_id"), most runs first."""
    groups: dict[str, list[RunStats]] = defaultdict(list)
    for r in runs:
        groups[str(getattr(r, key))].append(r)
    result = [Breakdown(k, len(rs), in_progress(rs), sum(1 for r in rs if r.status == "finished"),
                        time_to_finish(rs)) for k, rs in groups.items()]
    return sorted(result, key=lambda b: (-b.total, b.key))


@dataclass(frozen=True)
class PropertyBreakdown:
    """Runs by one select or multiselect property: a Breakdown per value (key = the value), most runs first;
    a multiselect run counts under each value it holds. `unset`: runs with the property and no value."""

    name: str
    title: str
    groups: list[Breakdown]
    unset: int = 0


def property_breakdowns(runs: Iterable[RunStats], values: Mapping[str, Mapping[str, Any]],
                        defs: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[PropertyBreakdown]:
    """Per select or multiselect property the runs declare (`defs`: run id -> its property definitions;
    `values`: run id -> its values), the runs by value, ordered by the property's title."""
    titles: dict[str, str] = {}
    by_value: dict[str, dict[str, list[RunStats]]] = defaultdict(lambda: defaultdict(list))
    unset: dict[str, int] = defaultdict(int)
    for r in runs:
        for d in defs.get(r.run_id, ()):
            if d.get("type") not in ("select", "multiselect") or not d.get("name"):
                continue
            name = str(d["name"])
            titles.setdefault(name, str(d.get("title") or name))
            raw = values.get(r.run_id, {}).get(name)
            chosen = [str(v) for v in raw] if isinstance(raw, list) else ([str(raw)] if raw not in (None, "") else [])
            for value in dict.fromkeys(chosen):
                by_value[name][value].append(r)
            if not chosen:
                unset[name] += 1
    result = []
    for name, title in titles.items():
        groups = [Breakdown(v, len(rs), in_progress(rs), sum(1 for r in rs if r.status == "finished"),
                            time_to_finish(rs)) for v, rs in by_value[name].items()]
        result.append(PropertyBreakdown(name, title, sorted(groups, key=lambda b: (-b.total, b.key)), unset[name]))
    return sorted(result, key=lambda p: (p.title.lower(), p.name))


# --- retrospective metrics --------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricValue:
    run_id: str
    run_name: str
    value: int  # ms for durations, cents for currency
    published_at: int


@dataclass(frozen=True)
class MetricSummary:
    title: str
    type: str  # duration | currency | integer
    target: int | None
    values: tuple[MetricValue, ...] = field(default_factory=tuple)  # oldest first, by publish time

    @property
    def average(self) -> int | None:
        """floor(mean) of every published value."""
        return _floor_mean([v.value for v in self.values])

    @property
    def last10(self) -> int | None:
        return _floor_mean([v.value for v in self.values[-10:]])

    @property
    def previous10(self) -> int | None:
        return _floor_mean([v.value for v in self.values[-20:-10]])

    @property
    def change(self) -> float | None:
        """last10 / previous10 * 100 - 100 (None without a previous ten, or when it averages 0)."""
        if self.last10 is None or not self.previous10:
            return None
        return self.last10 / self.previous10 * 100 - 100

    @property
    def minimum(self) -> int | None:
        return min((v.value for v in self.values), default=None)

    @property
    def maximum(self) -> int | None:
        return max((v.value for v in self.values), default=None)

    @property
    def distance(self) -> int | None:
        """average - target."""
        if self.target is None or self.average is None:
            return None
        return self.average - self.target

    def recent(self, n: int = 10) -> list[tuple[MetricValue, int | None]]:
        """The last n values, newest first, each with its distance from the target."""
        return [(v, None if self.target is None else v.value - self.target) for v in reversed(self.values[-n:])]


def _floor_mean(values: Sequence[int]) -> int | None:
    return sum(values) // len(values) if values else None
