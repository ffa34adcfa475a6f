"""Query helpers. Each takes a Session and runs inside the caller's transaction (Database.run)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, select

from bot.domain.checklists import TRANSITIONS
from storage.ids import new_id
from storage.models import (
    Checklist,
    ChecklistItem,
    Follower,
    Participant,
    Reminder,
    Run,
    RunCounter,
    StatusUpdate,
    TimelineEvent,
)


@dataclass
class RunView:
    """A run with everything needed to render it or answer the HTTP API, detached from the session."""

    run: Run
    checklists: list[tuple[Checklist, list[ChecklistItem]]]
    participant_ids: list[str]
    follower_ids: list[str] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)
    status_updates: list[StatusUpdate] = field(default_factory=list)
    reminder: Reminder | None = None

    states: list[str] | None = None  # set by load_overview, which loads no item rows

    def item_states(self) -> list[str]:
        if self.states is not None:
            return self.states
        return [i.state for _, items in self.checklists for i in items]

    def find_item(self, item_id: str) -> tuple[int, Checklist, int, ChecklistItem] | None:
        for ci, (checklist, items) in enumerate(self.checklists):
            for ii, item in enumerate(items):
                if item.id == item_id:
                    return ci, checklist, ii, item
        return None


def next_seq(session: Session, team_id: str, playbook_id: str) -> int:
    """Allocate the next `{seq}` for a team's playbook; the row lock makes it safe across processes."""
    counter = session.exec(
        select(RunCounter).where(RunCounter.team_id == team_id, RunCounter.playbook_id == playbook_id)
        .with_for_update()
    ).first()
    if counter is None:
        counter = RunCounter(team_id=team_id, playbook_id=playbook_id, value=0)
        session.add(counter)
    counter.value += 1
    session.flush()
    return counter.value


def insert_run(session: Session, run: Run, checklists: list[tuple[Checklist, list[ChecklistItem]]],
               participant_ids: Iterable[str], now: int) -> None:
    session.add(run)
    session.flush()
    for checklist, items in checklists:
        session.add(checklist)
        session.flush()
        session.add_all(items)
    for uid in dict.fromkeys(participant_ids):
        session.add(Participant(run_id=run.id, user_id=uid, joined_at=now))
    session.flush()


def get_run(session: Session, run_id: str) -> Run | None:
    return session.get(Run, run_id)


def load_view(session: Session, run_id: str, with_history: bool = False) -> RunView | None:
    run = session.get(Run, run_id)
    return None if run is None else load_views(session, [run], with_history)[0]


def load_views(session: Session, runs: list[Run], with_history: bool = False) -> list[RunView]:
    """Views of several runs with one query per table, not one per run (the HTTP API lists pages of
    runs)."""
    if not runs:
        return []
    ids = [r.id for r in runs]

    def rows(model: Any, *order: Any) -> dict[str, list[Any]]:
        grouped: dict[str, list[Any]] = {run_id: [] for run_id in ids}
        for row in session.exec(select(model).where(col(model.run_id).in_(ids)).order_by(*order)):
            grouped[row.run_id].append(row)
        return grouped

    checklists = rows(Checklist, Checklist.position)
    items = rows(ChecklistItem, ChecklistItem.position)
    participants = rows(Participant, Participant.joined_at, Participant.user_id)
    followers = rows(Follower, Follower.user_id)
    reminders = {r.run_id: r for r in session.exec(select(Reminder).where(
        col(Reminder.run_id).in_(ids), Reminder.kind == "status_update"))}
    timeline = rows(TimelineEvent, TimelineEvent.at, TimelineEvent.id) if with_history else {}
    updates = rows(StatusUpdate, StatusUpdate.at) if with_history else {}
    views = []
    for run in runs:
        by_list: dict[str, list[ChecklistItem]] = {c.id: [] for c in checklists[run.id]}
        for item in items[run.id]:
            by_list.setdefault(item.checklist_id, []).append(item)
        views.append(RunView(run=run, checklists=[(c, by_list[c.id]) for c in checklists[run.id]],
                             participant_ids=[p.user_id for p in participants[run.id]],
                             follower_ids=[f.user_id for f in followers[run.id]],
                             timeline=timeline.get(run.id, []), status_updates=updates.get(run.id, []),
                             reminder=reminders.get(run.id)))
    return views


def load_overview(session: Session, run_id: str) -> RunView | None:
    """What the overview post shows: the run, its items' states (no item rows) and its reminder."""
    run = session.get(Run, run_id)
    if run is None:
        return None
    states = list(session.exec(select(ChecklistItem.state).where(ChecklistItem.run_id == run_id)))
    view = RunView(run=run, checklists=[], participant_ids=[], states=states)
    view.reminder = session.exec(select(Reminder).where(Reminder.run_id == run_id,
                                                        Reminder.kind == "status_update")).first()
    return view


def load_checklist_with_run(session: Session, checklist_id: str) -> tuple[Run, Checklist, list[ChecklistItem]] | None:
    """What a checklist post shows: its run (for the status), the checklist and its items."""
    loaded = load_checklist(session, checklist_id)
    if loaded is None:
        return None
    run = session.get(Run, loaded[0].run_id)
    return None if run is None else (run, loaded[0], loaded[1])


def checklist_post_id(session: Session, checklist_id: str) -> str:
    checklist = session.get(Checklist, checklist_id)
    return checklist.post_id if checklist is not None else ""


def load_checklist(session: Session, checklist_id: str) -> tuple[Checklist, list[ChecklistItem]] | None:
    checklist = session.get(Checklist, checklist_id)
    if checklist is None:
        return None
    items = list(session.exec(select(ChecklistItem).where(ChecklistItem.checklist_id == checklist_id)
                              .order_by(ChecklistItem.position)))
    return checklist, items


def add_timeline(session: Session, run_id: str, type: str, at: int, actor_id: str = "",
                 summary: str = "", details: dict[str, Any] | None = None) -> TimelineEvent:
    event = TimelineEvent(id=new_id(), run_id=run_id, type=type, at=at, actor_id=actor_id,
                          summary=summary, details=details or {})
    # No flush: the id is made here, and the unit of work writes the pending events together (one
    # executemany) at the next query or at commit, which is what keeps a batch of clicks cheap.
    session.add(event)
    return event


def apply_item_verb(session: Session, run_id: str, item_id: str, verb: str, actor_id: str,
                    now: int) -> tuple[ChecklistItem | None, str, bool]:
    """Move one item's state in one conditional UPDATE, so concurrent clicks on other items of the
    same checklist never overwrite each other, and a repeated click changes nothing.

    Returns (item after, state before, changed).
    """
    item = session.get(ChecklistItem, item_id)
    if item is None or item.run_id != run_id:
        return None, "", False
    before = item.state
    sources, target = TRANSITIONS[verb]
    result = session.execute(
        update(ChecklistItem)
        .where(ChecklistItem.id == item_id, col(ChecklistItem.state).in_(sorted(sources)))
        .values(state=target, updated_at=now, updated_by=actor_id)
        .execution_options(synchronize_session=False)
    )
    changed = result.rowcount == 1
    if changed:
        item.state, item.updated_at, item.updated_by = target, now, actor_id
        add_timeline(session, run_id, "item_state_changed", now, actor_id,
                     f"{item.title}: {before} -> {target}",
                     {"item_id": item_id, "from": before, "to": target})
    return item, before, changed


def set_assignee(session: Session, run_id: str, item_id: str, assignee_id: str, actor_id: str,
                 now: int) -> tuple[ChecklistItem | None, bool]:
    item = session.get(ChecklistItem, item_id)
    if item is None or item.run_id != run_id:
        return None, False
    if item.assignee_id == assignee_id:
        return item, False
    before = item.assignee_id
    session.execute(update(ChecklistItem).where(ChecklistItem.id == item_id)
                    .values(assignee_id=assignee_id, updated_at=now, updated_by=actor_id)
                    .execution_options(synchronize_session=False))
    item.assignee_id, item.updated_at, item.updated_by = assignee_id, now, actor_id
    add_timeline(session, run_id, "assignee_changed", now, actor_id, item.title,
                 {"item_id": item_id, "from": before, "to": assignee_id})
    return item, True


def set_run_fields(session: Session, run_id: str, **values: Any) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(**values)
                    .execution_options(synchronize_session=False))


def set_checklist_post(session: Session, checklist_id: str, post_id: str) -> None:
    session.execute(update(Checklist).where(Checklist.id == checklist_id).values(post_id=post_id)
                    .execution_options(synchronize_session=False))


def is_participant(session: Session, run_id: str, user_id: str) -> bool:
    return session.get(Participant, (run_id, user_id)) is not None


def list_runs(session: Session, *, team_ids: list[str] | None = None, channel_id: str = "",
              status: str = "", viewer_id: str = "", viewer_team_ids: Iterable[str] = (),
              is_admin: bool = False, limit: int = 100, offset: int = 0) -> tuple[list[Run], int]:
    """Runs the viewer may see (the same rule as bot.domain.permissions.can_view): admins all; others
    the runs they own or take part in, plus runs with a public channel in one of their teams."""
    query = select(Run)
    if team_ids is not None:
        query = query.where(col(Run.team_id).in_(team_ids))
    if channel_id:
        query = query.where(Run.channel_id == channel_id)
    if status:
        query = query.where(Run.status == status)
    if not is_admin:
        mine = select(Participant.run_id).where(Participant.user_id == viewer_id)
        conditions = [col(Run.id).in_(mine), Run.owner_id == viewer_id]
        teams = list(viewer_team_ids)
        if teams:
            conditions.append(and_(Run.private == False, col(Run.team_id).in_(teams)))  # noqa: E712
        query = query.where(or_(*conditions))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(session.exec(query.order_by(col(Run.created_at).desc(), Run.id).offset(offset).limit(limit)))
    return rows, int(total)

