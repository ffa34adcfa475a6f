"""Checklists and their items: state changes (one conditional UPDATE each), assignees, items added and
removed (positions kept contiguous, so `2.3` is always the third item shown), due dates, and what a
checklist post shows.

Each helper takes a Session and runs inside the caller's transaction (Database.run); each change records
its timeline event (contracts.md types) in the same transaction.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bot.domain.checklists import TRANSITIONS
from storage._sql import rowcount
from storage.ids import new_id
from storage.models import Checklist, ChecklistItem, Run
from storage.people import is_participant, membership
from storage.timeline import add_timeline

# Items whose `when` holds on their run's properties (storage/properties.py keeps `hidden` in step).
SHOWN = col(ChecklistItem.hidden).is_(False)


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
        .where(col(ChecklistItem.id) == item_id, col(ChecklistItem.state).in_(sorted(sources)))
        .values(state=target, updated_at=now, updated_by=actor_id)
        .execution_options(synchronize_session=False)
    )
    changed = rowcount(result) == 1
    if changed:
        item.state, item.updated_at, item.updated_by = target, now, actor_id
        add_timeline(session, run_id, "item_state_changed", now, actor_id,
                     f"{item.title}: {before} -> {target}",
                     {"item_id": item_id, "from": before, "to": target, "title": item.title})
    return item, before, changed


def set_assignee(session: Session, run_id: str, item_id: str, assignee_id: str, actor_id: str,
                 now: int) -> tuple[ChecklistItem | None, bool]:
    item = session.get(ChecklistItem, item_id)
    if item is None or item.run_id != run_id:
        return None, False
    if item.assignee_id == assignee_id:
        return item, False
    before = item.assignee_id
    session.execute(update(ChecklistItem).where(col(ChecklistItem.id) == item_id)
                    .values(assignee_id=assignee_id, updated_at=now, updated_by=actor_id)
                    .execution_options(synchronize_session=False))
    item.assignee_id, item.updated_at, item.updated_by = assignee_id, now, actor_id
    add_timeline(session, run_id, "assignee_changed", now, actor_id, item.title,
                 {"item_id": item_id, "from": before, "to": assignee_id})
    return item, True


def apply_change(session: Session, run_id: str, item_id: str, verb: str, actor: str, target: str,
                 now: int) -> tuple[ChecklistItem, bool] | None:
    """One item's change and its timeline event; (item after, changed) or None when it is not there."""
    if verb == "assign":
        item, changed = set_assignee(session, run_id, item_id, target, actor, now)
    else:
        item, _, changed = apply_item_verb(session, run_id, item_id, verb, actor, now)
    return None if item is None else (item, changed)


ClickOutcome = tuple[str, Run | None, ChecklistItem | None, bool]


def participant_apply(session: Session, run_id: str, item_id: str, verb: str, actor: str, now: int
                      ) -> ClickOutcome:
    """The common click in one transaction: a participant changing an item of a run in progress.

    Returns (outcome, run, item, changed); outcome "ok", "gone", "starting", "finished" or "not_participant"
    (nothing changed: the caller decides through bot.domain.permissions).
    """
    run = session.get(Run, run_id)
    if run is None or run.status == "failed":  # a start rolled back: its run is nobody's
        return "gone", None, None, False
    if run.status == "starting":
        return "starting", run, None, False
    if not is_participant(session, run_id, actor):
        return "not_participant", run, None, False
    if run.status != "in_progress":
        return "finished", run, None, False
    applied = apply_change(session, run_id, item_id, verb, actor, actor, now)
    if applied is None:
        return "gone_item", run, None, False
    return "ok", run, applied[0], applied[1]


def participant_apply_many(session: Session, ops: list[tuple[str, str, str, str]], now: int
                           ) -> list[ClickOutcome]:
    """Several clicks in one transaction, in arrival order (a double click: the second finds the item
    already changed and does nothing)."""
    # The ops read rows (runs, participants, items) and change items with plain UPDATEs; only their
    # timeline events are pending ORM objects, so nothing needs flushing until the batch commits.
    with session.no_autoflush:
        return [participant_apply(session, run_id, item_id, verb, actor, now)
                for run_id, item_id, verb, actor in ops]


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
                    .where(col(ChecklistItem.checklist_id) == item.checklist_id,
                           col(ChecklistItem.position) > item.position)
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
    session.execute(update(ChecklistItem).where(col(ChecklistItem.id) == item_id)
                    .values(due_at=due_at, due_noticed_at=None, due_soon_noticed_at=None, updated_at=now,
                            updated_by=actor_id)
                    .execution_options(synchronize_session=False))
    session.refresh(item)
    add_timeline(session, run_id, "item_due_changed", now, actor_id, item.title,
                 {"item_id": item_id, "from": before, "to": due_at})
    return item, True


def record_command(session: Session, run_id: str, item_id: str, command: str, actor_id: str,
                   now: int, mode: str, outcome: dict[str, Any] | None = None) -> None:
    """An item's command on the timeline: `mode` "handed_over" (given to the person to send), "ran" (run as
    them by Mattermost; `outcome` has its `response`) or "failed" (Mattermost refused: `status`, `error`)."""
    add_timeline(session, run_id, "command_ran", now, actor_id, command,
                 {"item_id": item_id, "mode": mode, **(outcome or {})})


def item_of_run(session: Session, run_id: str, item_id: str) -> tuple[ChecklistItem, str] | None:
    """A shown item of the run and its number as people see it ("2.3"); None when gone or hidden."""
    item = session.get(ChecklistItem, item_id)
    if item is None or item.run_id != run_id or item.hidden:
        return None
    number = item_number(session, item_id)
    return (item, number) if number else None


def load_checklist(session: Session, checklist_id: str) -> tuple[Checklist, list[ChecklistItem]] | None:
    checklist = session.get(Checklist, checklist_id)
    if checklist is None:
        return None
    items = list(session.exec(select(ChecklistItem).where(ChecklistItem.checklist_id == checklist_id,
                                                              col(ChecklistItem.hidden).is_(False))
                              .order_by(col(ChecklistItem.position))))
    return checklist, items


def load_checklist_with_run(session: Session, checklist_id: str) -> tuple[Run, Checklist, list[ChecklistItem]] | None:
    """What a checklist post shows: its run (for the status), the checklist and its items."""
    loaded = load_checklist(session, checklist_id)
    if loaded is None:
        return None
    run = session.get(Run, loaded[0].run_id)
    return None if run is None else (run, loaded[0], loaded[1])


def checklist_for_post(session: Session, post_id: str) -> tuple[Checklist, list[ChecklistItem], str] | None:
    """The checklist shown by a post, its items and its run's status; None for any other post."""
    checklist = session.exec(select(Checklist).where(Checklist.post_id == post_id)).first()
    if checklist is None:
        return None
    loaded = load_checklist(session, checklist.id)
    run = session.get(Run, checklist.run_id)
    if loaded is None or run is None:
        return None
    return loaded[0], loaded[1], run.status


def checklist_post_id(session: Session, checklist_id: str) -> str:
    checklist = session.get(Checklist, checklist_id)
    return checklist.post_id if checklist is not None else ""


def set_checklist_post(session: Session, checklist_id: str, post_id: str) -> None:
    session.execute(update(Checklist).where(col(Checklist.id) == checklist_id).values(post_id=post_id)
                    .execution_options(synchronize_session=False))


def load_items(session: Session, run_id: str) -> list[tuple[Checklist, list[ChecklistItem]]]:
    checklists = list(session.exec(select(Checklist).where(Checklist.run_id == run_id)
                                   .order_by(col(Checklist.position))))
    items = list(session.exec(select(ChecklistItem).where(ChecklistItem.run_id == run_id, SHOWN)
                              .order_by(col(ChecklistItem.position))))
    by_list: dict[str, list[ChecklistItem]] = {c.id: [] for c in checklists}
    for item in items:
        by_list.setdefault(item.checklist_id, []).append(item)
    return [(c, by_list[c.id]) for c in checklists]


def membership_and_items(session: Session, run_id: str, user_id: str, with_items: bool
                         ) -> tuple[tuple[bool, bool], list[tuple[Checklist, list[ChecklistItem]]] | None]:
    """(participant, follower) and, when asked, the run's checklists and items: one read for a command."""
    return membership(session, run_id, user_id), load_items(session, run_id) if with_items else None


def open_item_count(session: Session, run_id: str) -> int:
    return int(session.exec(select(func.count()).select_from(ChecklistItem).where(
        ChecklistItem.run_id == run_id, col(ChecklistItem.state).in_(("open", "in_progress")), SHOWN)).one())


OPEN_STATES = ("open", "in_progress")


SOON_MS = 15 * 60_000  # the assignee hears this long before an item falls due


def _due_unnoticed() -> Any:
    return (select(ChecklistItem).join(Run, col(Run.id) == ChecklistItem.run_id)
            .where(col(ChecklistItem.due_at).is_not(None), col(ChecklistItem.due_noticed_at).is_(None),
                   col(ChecklistItem.state).in_(OPEN_STATES), SHOWN, Run.status == "in_progress"))


def next_item_due(session: Session) -> int | None:
    """The earliest moment a notice is due: an open item's heads-up (SOON_MS before its due time) or
    its due time, whichever comes first of those still to come."""
    first = session.exec(_due_unnoticed().order_by(col(ChecklistItem.due_at)).limit(1)).first()
    soon = session.exec(_due_unnoticed().where(col(ChecklistItem.due_soon_noticed_at).is_(None))
                        .order_by(col(ChecklistItem.due_at)).limit(1)).first()
    times = [t for t in (first.due_at if first else None,
                         soon.due_at - SOON_MS if soon and soon.due_at is not None else None) if t is not None]
    return min(times) if times else None


def claim_items_due_soon(session: Session, now: int, limit: int) -> list[tuple[Run, ChecklistItem]]:
    """Open items falling due within SOON_MS of `now` whose heads-up is still to come, each claimed once
    across rounds and processes. One whose due time has come gets the due notice instead, not both."""
    column = col(ChecklistItem.due_soon_noticed_at)
    found = _due_unnoticed().where(column.is_(None), col(ChecklistItem.due_at) > now,
                                   col(ChecklistItem.due_at) <= now + SOON_MS)
    return _claim_each(session, found, column, now, limit)


def claim_items_due(session: Session, now: int, limit: int) -> list[tuple[Run, ChecklistItem]]:
    """The open items due at `now` whose notice this caller may give: each claimed with a conditional
    UPDATE, so a round run twice, or two bot processes, notice each item once."""
    found = _due_unnoticed().where(col(ChecklistItem.due_at) <= now)
    return _claim_each(session, found, col(ChecklistItem.due_noticed_at), now, limit)


def _claim_each(session: Session, found: Any, column: Any, now: int, limit: int) -> list[tuple[Run, ChecklistItem]]:
    """Set `column` to `now` on each item of `found` where it is still empty (and the due time is the one
    read): the items this caller won, with their runs."""
    out: list[tuple[Run, ChecklistItem]] = []
    for item in session.exec(found.order_by(col(ChecklistItem.due_at)).limit(limit)):
        claimed = session.execute(update(ChecklistItem).where(
            col(ChecklistItem.id) == item.id, column.is_(None), ChecklistItem.due_at == item.due_at)
            .values({column.key: now}).execution_options(synchronize_session=False))
        if rowcount(claimed) == 1:
            run = session.get(Run, item.run_id)
            assert run is not None
            out.append((run, item))
    return out


def shown_index(session: Session, item: ChecklistItem) -> int:
    """The item's place among the items its checklist shows (0-based): hidden items take no number."""
    before = session.exec(select(func.count()).select_from(ChecklistItem).where(
        ChecklistItem.checklist_id == item.checklist_id, col(ChecklistItem.position) < item.position,
        col(ChecklistItem.hidden).is_(True))).one()
    return item.position - int(before)


def item_number(session: Session, item_id: str) -> str:
    """An item's number as people see it ("2.3"), or "" when it is gone."""
    item = session.get(ChecklistItem, item_id)
    checklist = session.get(Checklist, item.checklist_id) if item is not None else None
    if item is None or checklist is None:
        return ""
    return f"{checklist.position + 1}.{shown_index(session, item) + 1}"


def add_checklist(session: Session, run_id: str, title: str, actor_id: str, now: int) -> Checklist | None:
    """A new, empty checklist at the end of the run's; None when the run is gone."""
    if session.get(Run, run_id) is None:
        return None
    last = session.exec(select(func.max(Checklist.position)).where(Checklist.run_id == run_id)).one()
    checklist = Checklist(id=new_id(), run_id=run_id, position=0 if last is None else int(last) + 1, title=title)
    session.add(checklist)
    session.flush()
    add_timeline(session, run_id, "checklist_added", now, actor_id, title, {"checklist_id": checklist.id})
    return checklist


def rename_checklist(session: Session, run_id: str, checklist_id: str, title: str, actor_id: str,
                     now: int) -> tuple[Checklist, str] | None:
    """(the checklist, its title before); None when it is not the run's."""
    checklist = session.get(Checklist, checklist_id)
    if checklist is None or checklist.run_id != run_id:
        return None
    before = checklist.title
    if before != title:
        checklist.title = title
        session.add(checklist)
        add_timeline(session, run_id, "checklist_renamed", now, actor_id, f"{before} to {title}",
                     {"checklist_id": checklist_id, "before": before, "after": title})
        session.flush()
    return checklist, before


def move_checklist(session: Session, run_id: str, checklist_id: str, to_index: int, actor_id: str,
                   now: int) -> list[Checklist] | None:
    """Put a checklist at position `to_index` (0-based, clamped), the others keeping their order; the
    run's checklists in their new order, or None when it is not the run's."""
    ordered = list(session.exec(select(Checklist).where(Checklist.run_id == run_id)
                                .order_by(col(Checklist.position))))
    moving = next((c for c in ordered if c.id == checklist_id), None)
    if moving is None:
        return None
    before = ordered.index(moving)
    to_index = max(0, min(to_index, len(ordered) - 1))
    if before == to_index:
        return ordered
    ordered.remove(moving)
    ordered.insert(to_index, moving)
    # Positions are unique per run: park every row out of the way first, then number them again.
    session.execute(update(Checklist).where(col(Checklist.run_id) == run_id)
                    .values(position=-1 - col(Checklist.position)).execution_options(synchronize_session=False))
    for position, checklist in enumerate(ordered):
        session.execute(update(Checklist).where(col(Checklist.id) == checklist.id).values(position=position)
                        .execution_options(synchronize_session=False))
    add_timeline(session, run_id, "checklist_moved", now, actor_id,
                 f"{moving.title}: {before + 1} to {to_index + 1}",
                 {"checklist_id": checklist_id, "before": before + 1, "after": to_index + 1})
    session.expire_all()
    return list(session.exec(select(Checklist).where(Checklist.run_id == run_id).order_by(col(Checklist.position))))
