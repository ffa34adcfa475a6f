"""Runs as a whole: storing a new one, loading what its posts and the API show, who may see which runs,
finishing and restoring, the retrospective, and the lists `list` and `todo` read.

Each helper takes a Session and runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, or_, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.domain.permissions import Viewer
from storage._sql import rowcount
from storage.items import shown_index
from storage.models import (
    Checklist,
    ChecklistItem,
    Follower,
    Participant,
    Reminder,
    Run,
    RunCounter,
    RunLink,
    StatusUpdate,
    TimelineEvent,
)
from storage.reminders import RETRO, STATUS, arm, move
from storage.timeline import add_timeline

# The statuses of runs people see; "starting" (a start in progress) and "failed" (a start rolled back)
# are in no list, answer and count.
SEEN_STATUSES = ("in_progress", "finished")


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
    links: list[RunLink] = field(default_factory=list)  # what actions made for the run (Jira, Zoom)

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
    """Allocate the next `{seq}` for a team's playbook in one upsert: two processes starting a team's
    first run of a playbook at once each get their own number (a read-then-insert would collide on
    the counter's key)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RunCounter).values(team_id=team_id, playbook_id=playbook_id, value=1)
    statement = statement.on_conflict_do_update(index_elements=["team_id", "playbook_id"],
                                                set_={"value": col(RunCounter.value) + 1})
    value = session.execute(statement.returning(col(RunCounter.value))).scalar_one()
    return int(value)


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


def store_new_run(session: Session, run: Run, checklists: list[tuple[Checklist, list[ChecklistItem]]],
                  participants: list[str], now: int) -> None:
    """A new run with its checklists, items, participants and its `run_started` event."""
    insert_run(session, run, checklists, participants, now)
    if run.status_updates_enabled and run.reminder_interval_s > 0:
        # Armed with the run, so the overview's first rendering already says when the update is due.
        arm(session, run.id, STATUS, run.created_at + run.reminder_interval_s * 1000, run.reminder_interval_s)
    add_timeline(session, run.id, "run_started", now, run.creator_id,
                 f"Run started from {run.playbook_title}", {"channel_id": run.channel_id})


def get_run(session: Session, run_id: str) -> Run | None:
    return session.get(Run, run_id)


def set_run_fields(session: Session, run_id: str, **values: Any) -> None:
    session.execute(update(Run).where(col(Run.id) == run_id).values(**values)
                    .execution_options(synchronize_session=False))


def set_broadcast_threads(session: Session, run_id: str, threads: dict[str, str]) -> None:
    """Remember the run's thread in each broadcast channel (channel id -> root post id)."""
    set_run_fields(session, run_id, broadcast_threads=threads)


def set_overview_post(session: Session, run_id: str, post_id: str) -> None:
    set_run_fields(session, run_id, overview_post_id=post_id)


def save_post_ids(session: Session, run_id: str, overview_id: str, post_ids: dict[str, str]) -> None:
    """Remember the run's overview post (unless empty) and each checklist's post."""
    if overview_id:
        set_overview_post(session, run_id, overview_id)
    for checklist_id, post_id in post_ids.items():
        session.execute(update(Checklist).where(col(Checklist.id) == checklist_id).values(post_id=post_id)
                        .execution_options(synchronize_session=False))


def run_post(session: Session, post_id: str) -> tuple[str, str] | None:
    """(run id, checklist id or "" for the overview) of a run post, or None for any other post."""
    run = session.exec(select(Run).where(Run.overview_post_id == post_id)).first()
    if run is not None:
        return run.id, ""
    checklist = session.exec(select(Checklist).where(Checklist.post_id == post_id)).first()
    if checklist is not None:
        return checklist.run_id, checklist.id
    return None


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
    links = rows(RunLink, RunLink.at, RunLink.action_id)
    views = []
    for run in runs:
        by_list: dict[str, list[ChecklistItem]] = {c.id: [] for c in checklists[run.id]}
        for item in items[run.id]:
            if item.hidden:  # its condition does not hold on the run's properties (storage.properties)
                continue
            by_list.setdefault(item.checklist_id, []).append(item)
        views.append(RunView(run=run, checklists=[(c, by_list[c.id]) for c in checklists[run.id]],
                             participant_ids=[p.user_id for p in participants[run.id]],
                             follower_ids=[f.user_id for f in followers[run.id]],
                             timeline=timeline.get(run.id, []), status_updates=updates.get(run.id, []),
                             reminder=reminders.get(run.id), links=links[run.id]))
    return views


def load_overview(session: Session, run_id: str) -> RunView | None:
    """What the overview post shows: the run, its items' states (no item rows) and its reminder."""
    run = session.get(Run, run_id)
    if run is None:
        return None
    states = list(session.exec(select(ChecklistItem.state).where(ChecklistItem.run_id == run_id,
                                                                 col(ChecklistItem.hidden).is_(False))))
    people = list(session.exec(select(Participant.user_id).where(Participant.run_id == run_id)
                               .order_by(col(Participant.joined_at), col(Participant.user_id))))
    view = RunView(run=run, checklists=[], participant_ids=people, states=states)
    view.reminder = session.exec(select(Reminder).where(Reminder.run_id == run_id,
                                                        Reminder.kind == "status_update")).first()
    return view


def visible_views(session: Session, viewer: Viewer, team_ids: list[str] | None, channel_id: str,
                  statuses: list[str], limit: int, offset: int) -> tuple[list[RunView], int]:
    """A page of the runs the viewer may see, each with its history (the HTTP API's list)."""
    found, total = visible_runs(session, viewer, team_ids=team_ids, channel_id=channel_id, statuses=statuses,
                                limit=limit, offset=offset)
    return load_views(session, found, with_history=True), total


# --- who may see which runs -------------------------------------------------------------------------

def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The SQL form of bot.domain.permissions.can_view, the one rule for every list of runs: admins see
    every run; others the runs they own or take part in, runs with a public channel in one of their
    teams, and runs whose channel they are known to be in (`viewer.member_of`).

    tests/unit/test_storage_visibility.py holds this against can_view, case by case."""
    if viewer.is_admin:
        return true()
    mine = select(Participant.run_id).where(Participant.user_id == viewer.user_id)
    conditions: list[ColumnElement[bool]] = [col(Run.id).in_(mine), col(Run.owner_id) == viewer.user_id]
    if viewer.is_guest:
        return or_(*conditions)  # guests: only the runs they take part in
    if viewer.team_ids:
        public = and_(col(Run.private) == false(), col(Run.team_id).in_(sorted(viewer.team_ids)))
        if viewer.hidden_playbooks:  # a private playbook's runs: not for those outside it
            public = and_(public, col(Run.playbook_id).not_in(sorted(viewer.hidden_playbooks)))
        conditions.append(public)
    if viewer.member_of:
        conditions.append(col(Run.channel_id).in_(sorted(viewer.member_of)))
    return or_(*conditions)


def visible_runs(session: Session, viewer: Viewer, team_ids: Iterable[str] | None = None,
                 channel_id: str = "", statuses: Iterable[str] = (), mine: bool = False,
                 limit: int = 100, offset: int = 0) -> tuple[list[Run], int]:
    """(runs the viewer may see, newest first, and how many there are in all) among the runs of
    `team_ids` (None: every team), in `channel_id`, with one of `statuses` (empty: any). `mine` keeps
    only the runs the viewer owns or takes part in, whoever they are. Serves run selection, `list`,
    `todo` and the HTTP API, so each shows exactly what the permissions allow."""
    query = select(Run)
    if team_ids is not None:
        query = query.where(col(Run.team_id).in_(sorted(set(team_ids))))
    if channel_id:
        query = query.where(Run.channel_id == channel_id)
    # A run being started, or one whose start was rolled back, is nobody's to see (storage.starts).
    wanted = sorted(set(statuses) & set(SEEN_STATUSES)) if statuses else list(SEEN_STATUSES)
    query = query.where(col(Run.status).in_(wanted))
    if mine:
        query = query.where(visible_to(Viewer(viewer.user_id)))
    else:
        query = query.where(visible_to(viewer))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(session.exec(query.order_by(col(Run.created_at).desc(), Run.id).offset(offset).limit(limit)))
    return rows, int(total)


@dataclass(frozen=True)
class RunLine:
    run: Run
    done: int
    total: int
    participant: bool


def progress_of(session: Session, run_ids: list[str]) -> dict[str, tuple[int, int]]:
    """run id -> (done, total) in one query; closed and skipped count as done."""
    if not run_ids:
        return {}
    done = func.sum(case((col(ChecklistItem.state).in_(("closed", "skipped")), 1), else_=0))
    rows = session.exec(select(ChecklistItem.run_id, func.count(), done)
                        .where(col(ChecklistItem.run_id).in_(run_ids), col(ChecklistItem.hidden).is_(False))
                        .group_by(ChecklistItem.run_id))
    return {rid: (int(d or 0), int(t)) for rid, t, d in rows}


def run_lines(session: Session, viewer: Viewer, team_id: str, mine: bool, limit: int = 25
              ) -> tuple[list[RunLine], int]:
    """`/playbook list`: runs in progress in a team that the viewer may see (or, with `mine`, owns or
    takes part in), with their progress."""
    runs, total = visible_runs(session, viewer, team_ids=[team_id], statuses=["in_progress"], mine=mine,
                               limit=limit)
    ids = [r.id for r in runs]
    counts = progress_of(session, ids)
    joined = set(session.exec(select(Participant.run_id).where(Participant.user_id == viewer.user_id,
                                                               col(Participant.run_id).in_(ids)))) if ids else set()
    return [RunLine(r, *counts.get(r.id, (0, 0)), r.id in joined or r.owner_id == viewer.user_id)
            for r in runs], total


@dataclass(frozen=True)
class TodoItem:
    run: Run
    number: str
    title: str
    state: str
    due_at: int | None


@dataclass(frozen=True)
class Todo:
    items: list[TodoItem]
    overdue_updates: list[tuple[Run, int]]  # (run, due_at)


def todo(session: Session, user_id: str, now: int, limit: int = 50) -> Todo:
    """Open items assigned to the user and overdue status updates of runs they own or take part in,
    across every run in progress (all teams: a to-do list that hides work is no to-do list)."""
    rows = session.exec(
        select(ChecklistItem, Checklist.position, Run)
        .join(Checklist, col(Checklist.id) == ChecklistItem.checklist_id)
        .join(Run, col(Run.id) == ChecklistItem.run_id)
        .where(ChecklistItem.assignee_id == user_id, col(ChecklistItem.state).in_(("open", "in_progress")),
               col(ChecklistItem.hidden).is_(False), Run.status == "in_progress")
        .order_by(func.coalesce(ChecklistItem.due_at, 2**62), col(Run.created_at), col(Checklist.position),
                  col(ChecklistItem.position))
        .limit(limit))
    items = [TodoItem(run, f"{cpos + 1}.{shown_index(session, item) + 1}", item.title, item.state, item.due_at)
             for item, cpos, run in rows]
    overdue = session.exec(
        select(Run, Reminder.due_at).join(Reminder, col(Reminder.run_id) == Run.id)
        .where(Reminder.kind == "status_update", Run.status == "in_progress",
               col(Reminder.due_at).is_not(None), col(Reminder.due_at) < now,
               visible_to(Viewer(user_id)))  # runs they own or take part in
        .order_by(col(Reminder.due_at)).limit(limit))
    # `due` is never None here (the WHERE excludes NULL); the check only narrows its type.
    return Todo(items, [(run, int(due)) for run, due in overdue if due is not None])


# --- finish, restore, retrospective -----------------------------------------------------------------


def finish(session: Session, run_id: str, actor_id: str, now: int, retro_due: int | None,
           retro_interval_s: int) -> Run | None:
    """Mark the run finished (once: a second finish changes nothing and returns None)."""
    result = session.execute(update(Run).where(col(Run.id) == run_id, col(Run.status) == "in_progress")
                             .values(status="finished", finished_at=now)
                             .execution_options(synchronize_session=False))
    if rowcount(result) != 1:
        return None
    move(session, run_id, STATUS, None)
    run = session.get(Run, run_id)
    assert run is not None
    session.refresh(run)
    if run.retrospective_enabled and not run.retrospective_status:
        arm(session, run_id, RETRO, retro_due, retro_interval_s)
    add_timeline(session, run_id, "run_finished", now, actor_id, "Run finished")
    return run


def restore(session: Session, run_id: str, actor_id: str, now: int) -> Run | None:
    """Back to in progress; the status reminder restarts one interval from now."""
    result = session.execute(update(Run).where(col(Run.id) == run_id, col(Run.status) == "finished")
                             .values(status="in_progress", finished_at=None)
                             .execution_options(synchronize_session=False))
    if rowcount(result) != 1:
        return None
    run = session.get(Run, run_id)
    assert run is not None
    session.refresh(run)
    move(session, run_id, RETRO, None)
    if run.status_updates_enabled and run.reminder_interval_s > 0:
        arm(session, run_id, STATUS, now + run.reminder_interval_s * 1000, run.reminder_interval_s)
    add_timeline(session, run_id, "run_restored", now, actor_id, "Run restored to in progress")
    return run


def set_retrospective(session: Session, run_id: str, actor_id: str, now: int, status: str,
                      text: str | None) -> Run | None:
    """Publish (status "published", with text) or cancel ("cancelled") the retrospective."""
    run = session.get(Run, run_id)
    if run is None or not run.retrospective_enabled:
        return None
    values: dict[str, Any] = {"retrospective_status": status}
    if text is not None:
        values["retrospective_text"] = text
    session.execute(update(Run).where(col(Run.id) == run_id).values(**values)
                    .execution_options(synchronize_session=False))
    move(session, run_id, RETRO, None)
    if status != "published":
        kind, summary = "retrospective_cancelled", "No retrospective for this run"
    elif run.retrospective_status == "published":  # published again: it replaces the first
        kind, summary = "retrospective_updated", "Retrospective updated"
    else:
        kind, summary = "retrospective_published", "Retrospective published"
    add_timeline(session, run_id, kind, now, actor_id, summary)
    session.refresh(run)
    return run


def in_progress_run_in_channel(session: Session, channel_id: str) -> Run | None:
    """The run in progress this channel was created for. Runs started in an existing channel
    (`existing_channel`) share it with the channel's own life and with each other: they are not it."""
    return session.exec(select(Run).where(Run.channel_id == channel_id, Run.status == "in_progress",
                                          col(Run.existing_channel).is_(False))
                        .order_by(col(Run.created_at).desc()).limit(1)).first()


def channel_shared(session: Session, channel_id: str, run_id: str) -> bool:
    """Whether another run still going (starting or in progress) uses this channel: then it is not
    archived when this run finishes."""
    return session.exec(select(Run.id).where(Run.channel_id == channel_id, Run.id != run_id,
                                             col(Run.status).in_(("starting", "in_progress")))
                        .limit(1)).first() is not None


def runs_to_sweep(session: Session, finished_since: int) -> list[str]:
    """Runs whose posts the sweep compares with their rows: every run in progress and those finished
    since `finished_since`, oldest first."""
    return list(session.exec(select(Run.id).where(or_(col(Run.status) == "in_progress",
                                                      col(Run.finished_at) >= finished_since))
                             .order_by(col(Run.created_at))))


def claim_sweep(session: Session, run_id: str, holder: str, now: int, ttl_ms: int) -> bool:
    """Claim comparing the run's posts with its rows until `now + ttl_ms`; False while another process
    holds an unexpired claim. A conditional UPDATE, so two processes racing for it get one winner."""
    taken = session.execute(
        update(Run).where(col(Run.id) == run_id, or_(col(Run.sweep_until).is_(None), col(Run.sweep_until) < now,
                                                     col(Run.sweep_holder) == holder))
        .values(sweep_holder=holder, sweep_until=now + ttl_ms).execution_options(synchronize_session=False))
    return rowcount(taken) == 1


def release_sweep(session: Session, run_id: str, holder: str) -> None:
    session.execute(update(Run).where(col(Run.id) == run_id, col(Run.sweep_holder) == holder)
                    .values(sweep_holder="", sweep_until=None).execution_options(synchronize_session=False))


def replace_run_post(session: Session, run_id: str, checklist_id: str, old_post_id: str, new_post_id: str) -> bool:
    """Point the run's overview (checklist_id "") or a checklist at a new post, only if it still shows
    `old_post_id`: False when someone replaced it meanwhile (the new post is then surplus)."""
    if checklist_id:
        done = session.execute(update(Checklist).where(col(Checklist.id) == checklist_id,
                                                       col(Checklist.run_id) == run_id,
                                                       col(Checklist.post_id) == old_post_id)
                               .values(post_id=new_post_id).execution_options(synchronize_session=False))
    else:
        done = session.execute(update(Run).where(col(Run.id) == run_id, col(Run.overview_post_id) == old_post_id)
                               .values(overview_post_id=new_post_id).execution_options(synchronize_session=False))
    return rowcount(done) == 1


def rename_run(session: Session, run_id: str, name: str, actor_id: str, now: int) -> Run | None:
    """Give the run a new name (timeline: from what, to what); None when the run is gone."""
    run = session.get(Run, run_id)
    if run is None:
        return None
    before = run.name
    if before != name:
        run.name = name
        session.add(run)
        add_timeline(session, run_id, "run_renamed", now, actor_id, f"{before} to {name}",
                     {"before": before, "after": name})
        session.flush()
    session.refresh(run)
    return run


def set_summary(session: Session, run_id: str, summary: str, actor_id: str, now: int) -> Run | None:
    run = session.get(Run, run_id)
    if run is None:
        return None
    if run.summary != summary:
        run.summary = summary
        session.add(run)
        add_timeline(session, run_id, "summary_changed", now, actor_id, summary or "(cleared)",
                     {"summary": summary})
        session.flush()
    session.refresh(run)
    return run


def set_channel_archived(session: Session, run_id: str, archived: bool, actor_id: str, now: int) -> bool:
    """Record that the bot archived (or brought back) the run's channel; False when it already was."""
    done = session.execute(update(Run).where(col(Run.id) == run_id, col(Run.channel_archived) == (not archived))
                           .values(channel_archived=archived).execution_options(synchronize_session=False))
    if rowcount(done) != 1:
        return False
    add_timeline(session, run_id, "channel_archived" if archived else "channel_unarchived", now, actor_id,
                 "Channel archived" if archived else "Channel reopened")
    return True
