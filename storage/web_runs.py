"""What the web view's runs list and run page read: a filtered, sorted page of the runs a person may see
with its progress, last and next status update, participants and whether the person follows each, in a
few grouped queries (never one per run); the choices the filters offer; and a run's "version", the
cheap query the live page polls to learn that something changed.

Everything is filtered, sorted and paginated in SQL. Visibility is storage.runs.visible_to, the one
SQL form of bot.domain.permissions.can_view. Each helper takes a Session (Database.run).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, column, exists, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from bot.domain.permissions import Viewer
from storage.models import (
    ChecklistItem,
    Follower,
    Participant,
    Reminder,
    Run,
    RunStart,
    StatusUpdate,
    TimelineEvent,
)
from storage.reminders import STATUS
from storage.runs import SEEN_STATUSES, progress_of, visible_to

STATUS_FILTERS = ("in_progress", "finished", "all")
SORTS = ("name", "update", "start")
MAX_TEXT = 200  # characters of the text filter


@dataclass(frozen=True)
class RunFilter:
    """The runs list's filters and order, as the URL carries them (handlers/web_runs.py parses it)."""

    team_id: str = ""
    playbook_id: str = ""
    status: str = "in_progress"  # in_progress | finished | all
    owner_id: str = ""
    mine: bool = False  # owned by or taken part in by the viewer
    overdue: bool = False  # in progress with its status update overdue
    text: str = ""  # in the name or the summary
    property_name: str = ""  # with property_value: runs whose property is this value (or, a list, holds it)
    property_value: str = ""
    sort: str = "start"  # name | update (last status update) | start
    desc: bool = True


@dataclass
class RunRow:
    """One line of the runs list."""

    run: Run
    done: int
    total: int
    last_update_at: int | None
    next_update_at: int | None  # the status update's due time, for a run in progress with one armed
    participant_ids: list[str] = field(default_factory=list)
    following: bool = False


def _last_update() -> ColumnElement[int]:
    """The run's latest status update time (NULL for none): a correlated subquery on ix_status_updates_run_at."""
    return (select(func.max(StatusUpdate.at)).where(col(StatusUpdate.run_id) == col(Run.id))
            .correlate(Run).scalar_subquery())


def _overdue(now: int) -> ColumnElement[bool]:
    return and_(col(Run.status) == "in_progress", exists(
        select(literal(1)).where(col(Reminder.run_id) == col(Run.id), col(Reminder.kind) == STATUS,
                                 col(Reminder.due_at).is_not(None), col(Reminder.due_at) < now)
        .correlate(Run)))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def property_is(dialect: str, name: str, value: str) -> ColumnElement[bool]:
    """Runs whose property `name` is `value` (select, text) or, for a multiselect (a JSON list), holds it.
    The JSON column is `json` on PostgreSQL (jsonb's `@>` matches a string and a list's member alike) and
    text on SQLite (json_each walks a list, or yields a string itself as its one row)."""
    if dialect == "postgresql":
        return cast(col(Run.properties), JSONB)[name].op("@>")(func.to_jsonb(cast(literal(value), String)))
    each = func.json_each(col(Run.properties), literal(f'$."{name}"')).table_valued("value")
    return or_(col(Run.properties)[name].as_string() == value,
               exists(sa_select(literal(1)).select_from(each).where(column("value") == value)))


def _conditions(viewer: Viewer, f: RunFilter, now: int, dialect: str = "sqlite") -> list[ColumnElement[bool]]:
    wanted = list(SEEN_STATUSES) if f.status == "all" else [f.status]
    # "Mine" (owned or taken part in) is always visible (can_view), and narrower: it replaces the rule.
    mine_or_visible = visible_to(Viewer(viewer.user_id)) if f.mine else visible_to(viewer)
    where: list[ColumnElement[bool]] = [col(Run.status).in_(wanted), mine_or_visible]
    if f.team_id:
        where.append(col(Run.team_id) == f.team_id)
    if f.playbook_id:
        where.append(col(Run.playbook_id) == f.playbook_id)
    if f.owner_id:
        where.append(col(Run.owner_id) == f.owner_id)
    if f.overdue:
        where.append(_overdue(now))
    if f.text:
        pattern = _like(f.text[:MAX_TEXT])
        where.append(or_(col(Run.name).ilike(pattern, escape="\\"), col(Run.summary).ilike(pattern, escape="\\")))
    if f.property_name:
        where.append(property_is(dialect, f.property_name, f.property_value))
    return where


def list_runs(session: Session, viewer: Viewer, f: RunFilter, now: int, limit: int, offset: int
              ) -> tuple[list[RunRow], int]:
    """(a page of the runs `viewer` may see that pass `f`, in its order; how many pass in all)."""
    where = _conditions(viewer, f, now, session.get_bind().dialect.name)
    total = session.exec(select(func.count()).select_from(Run).where(*where)).one()
    last = _last_update().label("last_update_at")
    if f.sort == "name":
        key: Any = func.lower(col(Run.name))
    elif f.sort == "update":
        key = func.coalesce(last, 0)
    else:
        key = col(Run.created_at)
    order = [key.desc() if f.desc else key.asc(), col(Run.id).desc() if f.desc else col(Run.id).asc()]
    found = list(session.exec(select(Run, last).where(*where).order_by(*order).offset(offset).limit(limit)))
    return _rows(session, viewer, [(run, at) for run, at in found]), int(total)


def _rows(session: Session, viewer: Viewer, found: list[tuple[Run, int | None]]) -> list[RunRow]:
    """The page's rows, completed with one query per table for all of them."""
    ids = [run.id for run, _ in found]
    if not ids:
        return []
    counts = progress_of(session, ids)
    people: dict[str, list[str]] = {rid: [] for rid in ids}
    for run_id, user_id in session.exec(select(Participant.run_id, Participant.user_id)
                                        .where(col(Participant.run_id).in_(ids))
                                        .order_by(col(Participant.joined_at), col(Participant.user_id))):
        people[run_id].append(user_id)
    due = dict(session.exec(select(Reminder.run_id, Reminder.due_at)
                            .where(col(Reminder.run_id).in_(ids), col(Reminder.kind) == STATUS)).all())
    followed = set(session.exec(select(Follower.run_id).where(col(Follower.run_id).in_(ids),
                                                              col(Follower.user_id) == viewer.user_id)))
    return [RunRow(run=run, done=counts.get(run.id, (0, 0))[0], total=counts.get(run.id, (0, 0))[1],
                   last_update_at=int(at) if at is not None else None,
                   next_update_at=due.get(run.id) if run.status == "in_progress" else None,
                   participant_ids=people[run.id], following=run.id in followed)
            for run, at in found]


@dataclass(frozen=True)
class Choices:
    """What the filters offer: the playbooks and owners of the runs the viewer may see."""

    playbooks: list[tuple[str, str]]  # (id, title)
    owner_ids: list[str]
    properties: list[PropertyChoice] = field(default_factory=list)


@dataclass
class PropertyChoice:
    """A select or multiselect property the visible runs' playbooks declare, with its options."""

    name: str
    title: str
    options: list[str] = field(default_factory=list)


def filter_choices(session: Session, viewer: Viewer, limit: int = 200, runs_read: int = 500) -> Choices:
    seen = [col(Run.status).in_(list(SEEN_STATUSES)), visible_to(viewer)]
    playbooks = session.exec(select(Run.playbook_id, func.max(Run.playbook_title)).where(*seen)
                             .group_by(col(Run.playbook_id)).order_by(col(Run.playbook_id)).limit(limit))
    owners = session.exec(select(Run.owner_id).where(*seen).group_by(col(Run.owner_id))
                          .order_by(col(Run.owner_id)).limit(limit))
    # The properties as the latest runs started with them (a run keeps its playbook's definitions).
    found: dict[str, PropertyChoice] = {}
    for defs in session.exec(select(Run.property_defs).where(*seen).order_by(col(Run.created_at).desc())
                             .limit(runs_read)):
        for d in defs or []:
            if not isinstance(d, dict) or d.get("type") not in ("select", "multiselect") or not d.get("name"):
                continue
            choice = found.setdefault(str(d["name"]), PropertyChoice(str(d["name"]), str(d.get("title") or d["name"])))
            choice.options += [str(o) for o in d.get("options") or [] if str(o) not in choice.options]
    return Choices([(pid, title or pid) for pid, title in playbooks], list(owners),
                   sorted(found.values(), key=lambda c: c.title.lower()))


def is_following(session: Session, run_id: str, user_id: str) -> bool:
    return session.get(Follower, (run_id, user_id)) is not None


def channel_name(session: Session, run_id: str) -> str:
    """The run channel's name (URL part) as its start chose it; "" when unknown (link by id then)."""
    start = session.get(RunStart, run_id)
    return start.channel_name if start is not None else ""


def run_version(session: Session, run_id: str) -> str:
    """A short digest of everything the run page shows that can change, in one query: it moves with every
    change to the run (each change records a timeline event, item rows carry updated_at), so the live page
    polls this. "" when the run is gone."""
    def one(statement: Any) -> Any:
        return statement.scalar_subquery()

    columns: list[Any] = [
        Run.status, Run.name, Run.summary, Run.owner_id, Run.retrospective_status,
        func.length(Run.retrospective_text),
        one(select(func.count()).where(col(TimelineEvent.run_id) == run_id)),
        one(select(func.max(TimelineEvent.at)).where(col(TimelineEvent.run_id) == run_id)),
        one(select(func.count()).where(col(ChecklistItem.run_id) == run_id, col(ChecklistItem.hidden).is_(False))),
        one(select(func.max(ChecklistItem.updated_at)).where(col(ChecklistItem.run_id) == run_id,
                                                             col(ChecklistItem.hidden).is_(False))),
        one(select(func.count()).where(col(StatusUpdate.run_id) == run_id)),
        one(select(func.count()).where(col(Participant.run_id) == run_id)),
        one(select(func.max(Reminder.due_at)).where(col(Reminder.run_id) == run_id, col(Reminder.kind) == STATUS)),
    ]
    row = session.execute(sa_select(*columns).where(col(Run.id) == run_id)).first()
    if row is None:
        return ""
    return hashlib.sha256("|".join(str(v) for v in row).encode()).hexdigest()[:16]
