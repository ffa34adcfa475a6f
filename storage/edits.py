"""Changes commands make to a run besides item states: items added and removed (positions kept
contiguous, so `2.3` is always the third item shown), due dates, the owner, participants, followers,
and what `list`, `info` and `todo` read.

Each helper takes a Session and runs inside the caller's transaction (Database.run); each change records
its timeline event (contracts.md types) in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, update
from sqlmodel import Session, col, select

from storage.ids import new_id
from storage.models import Checklist, ChecklistItem, Follower, Participant, Reminder, Run
from storage.queries import add_timeline

# -- items -----------------------------------------------------------------------------------------

def add_item(session: Session, run_id: str, checklist_id: str, title: str, actor_id: str,
             now: int) -> ChecklistItem | None:
    """Append an item to the end of a checklist; None when the checklist is not the run's."""
    checklist = session.get(Checklist, checklist_id)
    if checklist is None or checklist.run_id != run_id:
        return None
    last = session.exec(select(func.max(ChecklistItem.position))
                        .where(ChecklistItem.checklist_id == checklist_id)).one()
    item = ChecklistItem(id=new_id(), run_id=run_id, checklist_id=checklist_id,
                         position=0 if last is None else int(last) + 1, title=title, updated_at=now,
                         updated_by=actor_id)
    session.add(item)
    session.flush()
    add_timeline(session, run_id, "item_added", now, actor_id, f"{checklist.title}: {title}",
                 {"item_id": item.id, "checklist_id": checklist_id})
    return item


def remove_item(session: Session, run_id: str, item_id: str, actor_id: str, now: int) -> ChecklistItem | None:
    """Delete an item and close the gap it leaves; None when it is already gone."""
    item = session.get(ChecklistItem, item_id)
    if item is None or item.run_id != run_id:
        return None
    checklist = session.get(Checklist, item.checklist_id)
    session.delete(item)
    session.flush()
    session.execute(update(ChecklistItem)
                    .where(ChecklistItem.checklist_id == item.checklist_id,
                           ChecklistItem.position > item.position)
                    .values(position=ChecklistItem.position - 1)
                    .execution_options(synchronize_session=False))
    add_timeline(session, run_id, "item_removed", now, actor_id,
                 f"{checklist.title if checklist else ''}: {item.title}",
                 {"item_id": item_id, "checklist_id": item.checklist_id, "state": item.state})
    return item


def set_due(session: Session, run_id: str, item_id: str, due_at: int | None, actor_id: str,
            now: int) -> tuple[ChecklistItem | None, bool]:
    """Set or clear an item's due date. The contract has no due-date event type; the change is
    recorded as `item_due_changed` (an extension: contracts.md lets types be added)."""
    item = session.get(ChecklistItem, item_id)
    if item is None or item.run_id != run_id:
        return None, False
    if item.due_at == due_at:
        return item, False
    before = item.due_at
    session.execute(update(ChecklistItem).where(ChecklistItem.id == item_id)
                    .values(due_at=due_at, updated_at=now, updated_by=actor_id)
                    .execution_options(synchronize_session=False))
    session.refresh(item)
    add_timeline(session, run_id, "item_due_changed", now, actor_id, item.title,
                 {"item_id": item_id, "from": before, "to": due_at})
    return item, True


def record_command(session: Session, run_id: str, item_id: str, command: str, actor_id: str,
                   now: int, mode: str) -> None:
    add_timeline(session, run_id, "command_ran", now, actor_id, command,
                 {"item_id": item_id, "mode": mode})


# -- people ------------------------------------------------------------------------------------------

def add_participant(session: Session, run_id: str, user_id: str, actor_id: str, now: int,
                    summary: str = "") -> bool:
    """Make someone a participant (and a follower, as the plugin does); False if they already were."""
    if session.get(Participant, (run_id, user_id)) is not None:
        return False
    session.add(Participant(run_id=run_id, user_id=user_id, joined_at=now))
    if session.get(Follower, (run_id, user_id)) is None:
        session.add(Follower(run_id=run_id, user_id=user_id))
    session.flush()
    add_timeline(session, run_id, "participant_joined", now, actor_id, summary or user_id,
                 {"user_id": user_id, "by": actor_id})
    return True


def remove_participant(session: Session, run_id: str, user_id: str, actor_id: str, now: int,
                       summary: str = "") -> bool:
    row = session.get(Participant, (run_id, user_id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    add_timeline(session, run_id, "participant_left", now, actor_id, summary or user_id,
                 {"user_id": user_id, "by": actor_id})
    return True


def set_owner(session: Session, run_id: str, owner_id: str, actor_id: str, now: int,
              summary: str = "", joined_summary: str = "") -> tuple[str, bool]:
    """(previous owner, changed). The new owner becomes a participant if they were not one.
    `summary` is the timeline's words for it (default: the two user ids)."""
    run = session.get(Run, run_id)
    if run is None:
        return "", False
    before = run.owner_id
    if before == owner_id:
        return before, False
    session.execute(update(Run).where(Run.id == run_id).values(owner_id=owner_id)
                    .execution_options(synchronize_session=False))
    add_participant(session, run_id, owner_id, actor_id, now, joined_summary)
    add_timeline(session, run_id, "owner_changed", now, actor_id, summary or f"{before} -> {owner_id}",
                 {"from": before, "to": owner_id})
    return before, True


def follow(session: Session, run_id: str, user_id: str) -> bool:
    if session.get(Follower, (run_id, user_id)) is not None:
        return False
    session.add(Follower(run_id=run_id, user_id=user_id))
    session.flush()
    return True


def unfollow(session: Session, run_id: str, user_id: str) -> bool:
    row = session.get(Follower, (run_id, user_id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def membership(session: Session, run_id: str, user_id: str) -> tuple[bool, bool]:
    """(participant, follower)."""
    return (session.get(Participant, (run_id, user_id)) is not None,
            session.get(Follower, (run_id, user_id)) is not None)


# -- reading: list, todo -----------------------------------------------------------------------------

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
                        .where(col(ChecklistItem.run_id).in_(run_ids)).group_by(ChecklistItem.run_id))
    return {rid: (int(d or 0), int(t)) for rid, t, d in rows}


def team_runs(session: Session, team_id: str, user_id: str, is_admin: bool, mine: bool,
              limit: int = 25) -> tuple[list[RunLine], int]:
    """Runs in progress in a team that the user may see (or, with `mine`, owns or takes part in)."""
    mine_ids = select(Participant.run_id).where(Participant.user_id == user_id)
    query = select(Run).where(Run.team_id == team_id, Run.status == "in_progress")
    if mine:
        query = query.where(col(Run.id).in_(mine_ids) | (Run.owner_id == user_id))
    elif not is_admin:
        query = query.where(col(Run.id).in_(mine_ids) | (Run.owner_id == user_id)
                            | (Run.private == False))  # noqa: E712
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    runs = list(session.exec(query.order_by(col(Run.created_at).desc(), Run.id).limit(limit)))
    ids = [r.id for r in runs]
    counts = progress_of(session, ids)
    joined = set(session.exec(select(Participant.run_id).where(Participant.user_id == user_id,
                                                               col(Participant.run_id).in_(ids)))) if ids else set()
    return [RunLine(r, *counts.get(r.id, (0, 0)), r.id in joined or r.owner_id == user_id) for r in runs], int(total)


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
               Run.status == "in_progress")
        .order_by(func.coalesce(ChecklistItem.due_at, 2**62), col(Run.created_at), Checklist.position,
                  ChecklistItem.position)
        .limit(limit))
    items = [TodoItem(run, f"{cpos + 1}.{item.position + 1}", item.title, item.state, item.due_at)
             for item, cpos, run in rows]
    mine = select(Participant.run_id).where(Participant.user_id == user_id)
    overdue = session.exec(
        select(Run, Reminder.due_at).join(Reminder, col(Reminder.run_id) == Run.id)
        .where(Reminder.kind == "status_update", Run.status == "in_progress",
               col(Reminder.due_at).is_not(None), col(Reminder.due_at) < now,
               col(Run.id).in_(mine) | (Run.owner_id == user_id))
        .order_by(Reminder.due_at).limit(limit))
    return Todo(items, [(run, int(due)) for run, due in overdue])


def load_items(session: Session, run_id: str) -> list[tuple[Checklist, list[ChecklistItem]]]:
    checklists = list(session.exec(select(Checklist).where(Checklist.run_id == run_id).order_by(Checklist.position)))
    items = list(session.exec(select(ChecklistItem).where(ChecklistItem.run_id == run_id)
                              .order_by(ChecklistItem.position)))
    by_list: dict[str, list[ChecklistItem]] = {c.id: [] for c in checklists}
    for item in items:
        by_list.setdefault(item.checklist_id, []).append(item)
    return [(c, by_list[c.id]) for c in checklists]


def status_reminder(session: Session, run_id: str) -> Reminder | None:
    return session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == "status_update")).first()


def participant_ids(session: Session, run_id: str) -> list[str]:
    return list(session.exec(select(Participant.user_id).where(Participant.run_id == run_id)
                             .order_by(Participant.joined_at, Participant.user_id)))

