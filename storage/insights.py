"""What the insights page needs, in a few grouped queries over the runs a person may see.

Never one query per run and never every event: each run's timeline is read folded from run_facts (the
first run_started, the last run_finished, the first status update, the gaps between updates, ...), which
storage/run_facts.py keeps current as events are written. bot/domain/insights.py computes the rest.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy import select as select_many
from sqlmodel import Session, col, select

from bot.domain.insights import MetricValue, RunStats
from bot.domain.permissions import Viewer
from storage.models import Checklist, ChecklistItem, Run, RunFacts, RunMetric, TimelineEvent
from storage.run_facts import first_action
from storage.runs import SEEN_STATUSES, set_retrospective, visible_to


@dataclass(frozen=True)
class Scope:
    """Which runs: the viewer's visible ones, in `team_id` and of `playbook_id` when set."""

    viewer: Viewer
    team_id: str = ""
    playbook_id: str = ""
    # The period (ms): runs started or finished since then, and every run in progress; None = all time.
    since: int | None = None

    def where(self) -> ColumnElement[bool]:
        conditions = [col(Run.status).in_(SEEN_STATUSES), visible_to(self.viewer)]
        if self.since is not None:
            conditions.append(or_(col(Run.created_at) >= self.since, col(Run.status) == "in_progress",
                                  col(Run.finished_at) >= self.since))
        if self.team_id:
            conditions.append(col(Run.team_id) == self.team_id)
        if self.playbook_id:
            conditions.append(col(Run.playbook_id) == self.playbook_id)
        return and_(*conditions)


@dataclass
class MetricRows:
    """One playbook's published metric values, oldest first, and the definitions of its latest run."""

    playbook_id: str
    playbook_title: str
    definitions: list[dict[str, Any]] = field(default_factory=list)
    values: dict[int, list[MetricValue]] = field(default_factory=dict)  # position -> values
    titles: dict[int, tuple[str, str]] = field(default_factory=dict)  # position -> (title, type)


@dataclass
class InsightsData:
    runs: list[RunStats]
    skipped: list[tuple[str, int]]  # (item title, runs where it ended skipped), most first
    added: list[tuple[str, str]]  # (run id, title) of each item added by hand while the run was going
    metrics: list[MetricRows]
    teams: list[str]  # team ids and playbooks (id, title) among the viewer's runs, for the selectors
    playbooks: list[tuple[str, str]]
    # run id -> its property values and its [[properties]] definitions (runs that declare any)
    property_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    property_defs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def load(session: Session, scope: Scope, now: int, bot_id: str) -> InsightsData:
    values, defs = run_properties(session, scope)
    return InsightsData(runs=run_stats(session, scope, now, bot_id), skipped=skipped_items(session, scope),
                        added=added_items(session, scope), metrics=metric_rows(session, scope),
                        property_values=values, property_defs=defs, **choices(session, scope.viewer, scope.since))


def run_properties(session: Session, scope: Scope
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(run id -> property values, run id -> property definitions) of the runs in scope, in one query."""
    values: dict[str, dict[str, Any]] = {}
    defs: dict[str, list[dict[str, Any]]] = {}
    for run_id, props, specs in session.connection().execute(
            select_many(col(Run.id), col(Run.properties), col(Run.property_defs)).where(scope.where())):
        if specs:
            values[run_id] = dict(props or {})
            defs[run_id] = list(specs)
    return values, defs


def run_stats(session: Session, scope: Scope, now: int, bot_id: str) -> list[RunStats]:
    """Every run in scope with its timeline folded (run_facts): two queries whatever the number of runs."""
    where = scope.where()
    f = RunFacts
    columns = (Run.id, Run.name, Run.playbook_id, Run.playbook_title, Run.team_id, Run.owner_id, Run.status,
               Run.created_at, Run.finished_at, Run.reminder_interval_s, Run.retrospective_enabled,
               Run.status_updates_enabled, f.started_at, f.finished_at, f.first_update_at, f.last_update_at,
               f.first_action_at, f.first_action_by, f.other_action_at, f.retro_published_at, f.retro_cancelled,
               f.reminders_sent, f.update_gaps)
    # Core, not the ORM's loading of column rows: a third of the time over thousands of rows.
    runs: Sequence[Any] = session.connection().execute(select_many(*[col(c) for c in columns])
                                        .outerjoin(RunFacts, col(RunFacts.run_id) == col(Run.id))
                                        .where(where)).all()
    overdue = dict(session.exec(
        select(ChecklistItem.run_id, func.count())
        .where(col(ChecklistItem.run_id).in_(select(Run.id).where(where, col(Run.status) == "in_progress")),
               col(ChecklistItem.due_at) < now, col(ChecklistItem.state).not_in(("closed", "skipped")),
               col(ChecklistItem.hidden).is_(False))
        .group_by(ChecklistItem.run_id)).all())
    result = []
    for (run_id, name, playbook_id, title, team_id, owner_id, status, created_at, run_finished_at, interval_s,
         retro, updates_on, started_at, finished_at, first_update_at, last_update_at, first_at, first_by, other_at,
         retro_published_at, retro_cancelled, reminders_sent, gaps) in runs:
        last_finish = finished_at if finished_at is not None else run_finished_at
        # Gaps count for runs that ask for updates, against the run's interval as it is now.
        counted = list(gaps or []) if interval_s > 0 and updates_on else []
        result.append(RunStats(
            run_id=run_id, name=name, playbook_id=playbook_id, playbook_title=title, team_id=team_id,
            owner_id=owner_id, status=status, created_at=created_at, started_at=started_at,
            finished_at=last_finish if status == "finished" else None, first_update_at=first_update_at,
            last_update_at=last_update_at, first_action_at=first_action(first_at, first_by or "", other_at, bot_id),
            reminder_interval_s=interval_s if updates_on else 0, retrospective_enabled=retro,
            retro_published_at=retro_published_at, retro_cancelled=bool(retro_cancelled),
            reminders_sent=int(reminders_sent or 0), overdue_items=int(overdue.get(run_id, 0)),
            update_gaps=len(counted), update_gaps_on_time=sum(1 for g in counted if g <= interval_s * 1000)))
    return result


def skipped_items(session: Session, scope: Scope, limit: int = 10) -> list[tuple[str, int]]:
    """The item titles most often left skipped, by the number of runs."""
    runs = func.count(func.distinct(ChecklistItem.run_id))
    rows = session.exec(select(ChecklistItem.title, runs)
                        .where(col(ChecklistItem.run_id).in_(select(Run.id).where(scope.where())),
                               ChecklistItem.state == "skipped", col(ChecklistItem.hidden).is_(False))
                        .group_by(ChecklistItem.title).order_by(runs.desc(), col(ChecklistItem.title))
                        .limit(limit)).all()
    return [(title, int(n)) for title, n in rows]


def added_items(session: Session, scope: Scope) -> list[tuple[str, str]]:
    """(run id, item title) of every item_added event while its run was going (not after it finished).

    The title is the item's own where it still exists; a removed item's comes from the event's summary
    ("<checklist>: <title>")."""
    ev = TimelineEvent
    events = session.exec(
        select(ev.run_id, ev.summary, ev.details)
        .join(Run, col(Run.id) == col(ev.run_id))
        .where(scope.where(), ev.type == "item_added",
               (col(Run.finished_at).is_(None)) | (col(ev.at) <= col(Run.finished_at)))).all()
    item_ids = [str(d.get("item_id")) for _, _, d in events if isinstance(d, dict) and d.get("item_id")]
    titles: dict[str, str] = {}
    checklists: dict[str, str] = {}
    for chunk in range(0, len(item_ids), 500):
        titles.update(session.exec(select(ChecklistItem.id, ChecklistItem.title)
                                   .where(col(ChecklistItem.id).in_(item_ids[chunk:chunk + 500]))).all())
    missing = {str(d.get("checklist_id")) for _, _, d in events
               if isinstance(d, dict) and str(d.get("item_id")) not in titles and d.get("checklist_id")}
    if missing:
        checklists.update(session.exec(select(Checklist.id, Checklist.title)
                                       .where(col(Checklist.id).in_(sorted(missing)))).all())
    result = []
    for run_id, summary, details in events:
        d = details if isinstance(details, dict) else {}
        title = d.get("title") or titles.get(str(d.get("item_id")))
        if not title:
            prefix = checklists.get(str(d.get("checklist_id")), "")
            title = summary.removeprefix(prefix + ": ") if prefix else summary.split(": ", 1)[-1]
        result.append((run_id, str(title)))
    return result


def metric_rows(session: Session, scope: Scope) -> list[MetricRows]:
    """Published metric values of the runs in scope, per playbook, oldest first."""
    m = RunMetric
    columns = (m.run_id, m.position, m.title, m.type, m.value, m.published_at, Run.name, Run.playbook_id,
               Run.playbook_title)
    rows = session.execute(select_many(*[col(c) for c in columns])
                        .join(Run, col(Run.id) == col(m.run_id)).where(scope.where())
                        .order_by(col(m.published_at), col(m.run_id))).all()
    by_playbook: dict[str, MetricRows] = {}
    latest: dict[str, str] = {}
    for run_id, position, title, kind, value, at, name, playbook_id, playbook_title in rows:
        group = by_playbook.setdefault(playbook_id, MetricRows(playbook_id, playbook_title))
        group.values.setdefault(position, []).append(MetricValue(run_id, name, int(value), int(at)))
        group.titles[position] = (title, kind)
        latest[playbook_id] = run_id
    if latest:
        definitions = dict(session.exec(select(Run.id, Run.metric_defs)
                                        .where(col(Run.id).in_(sorted(set(latest.values()))))).all())
        for playbook_id, run_id in latest.items():
            by_playbook[playbook_id].definitions = list(definitions.get(run_id) or [])
    return sorted(by_playbook.values(), key=lambda g: (g.playbook_title, g.playbook_id))


def choices(session: Session, viewer: Viewer, since: int | None = None) -> dict[str, Any]:
    """The teams and playbooks among the runs the viewer may see (what the selectors offer)."""
    where = Scope(viewer, since=since).where()
    teams = session.exec(select(Run.team_id).where(where).distinct()).all()
    playbooks = session.exec(select(Run.playbook_id, func.max(Run.playbook_title)).where(where)
                             .group_by(Run.playbook_id)).all()
    return {"teams": sorted(teams), "playbooks": sorted(((p, t or p) for p, t in playbooks), key=lambda x: x[1])}


# --- retrospective metrics: writing ------------------------------------------------------------------

def save_metrics(session: Session, run_id: str, values: list[tuple[int, str, str, int]], now: int) -> None:
    """Replace the run's published metric values with `values` ((position, title, type, value))."""
    for old in session.exec(select(RunMetric).where(RunMetric.run_id == run_id)).all():
        session.delete(old)
    session.flush()
    session.add_all([RunMetric(run_id=run_id, position=p, title=t[:64], type=k, value=v, published_at=now)
                     for p, t, k, v in values])


def run_metrics(session: Session, run_id: str) -> dict[int, int]:
    """position -> the run's published value (the retrospective dialog shows them back)."""
    return {p: v for p, v in session.exec(select(RunMetric.position, RunMetric.value)
                                          .where(RunMetric.run_id == run_id)).all()}


def publish_retrospective(session: Session, run_id: str, actor_id: str, now: int, text: str,
                          metrics: list[tuple[int, str, str, int]]) -> Run | None:
    """Publish the retrospective and its metric values in one transaction (storage.runs.set_retrospective)."""
    run = set_retrospective(session, run_id, actor_id, now, "published", text)
    if run is not None:
        save_metrics(session, run_id, metrics, now)
    return run
