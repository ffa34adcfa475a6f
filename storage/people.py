"""Who takes part in a run and who follows it; the owner.

Participants work the run; followers hear about it. Each helper takes a Session and runs inside the
caller's transaction (Database.run); each change records its timeline event in the same transaction.
"""
from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage.models import ChecklistItem, Follower, Participant, Run
from storage.timeline import add_timeline


def is_participant(session: Session, run_id: str, user_id: str) -> bool:
    return session.get(Participant, (run_id, user_id)) is not None


def run_and_participation(session: Session, run_id: str, user_id: str) -> tuple[Run, bool] | None:
    """The run and whether the user takes part in it; None when there is no such run."""
    run = session.get(Run, run_id)
    if run is None:
        return None
    return run, is_participant(session, run_id, user_id)


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
              summary: str = "", joined_summary: str = "") -> tuple[str, bool, list[ChecklistItem]]:
    """(previous owner, changed, items handed over). The new owner becomes a participant if they were
    not one, and the previous owner's open items are theirs now (as the plugin does; items assigned to
    anyone else stay so), each on the timeline. `summary` is the timeline's words for the change."""
    run = session.get(Run, run_id)
    if run is None:
        return "", False, []
    before = run.owner_id
    if before == owner_id:
        return before, False, []
    session.execute(update(Run).where(col(Run.id) == run_id).values(owner_id=owner_id)
                    .execution_options(synchronize_session=False))
    add_participant(session, run_id, owner_id, actor_id, now, joined_summary)
    add_timeline(session, run_id, "owner_changed", now, actor_id, summary or f"{before} -> {owner_id}",
                 {"from": before, "to": owner_id})
    moved = list(session.exec(select(ChecklistItem).where(
        ChecklistItem.run_id == run_id, ChecklistItem.assignee_id == before,
        col(ChecklistItem.state).in_(("open", "in_progress")))))
    for item in moved:
        item.assignee_id, item.updated_at, item.updated_by = owner_id, now, actor_id
        session.add(item)
        add_timeline(session, run_id, "assignee_changed", now, actor_id, item.title,
                     {"item_id": item.id, "from": before, "to": owner_id})
    session.flush()
    return before, True, moved


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


def participant_ids(session: Session, run_id: str) -> list[str]:
    return list(session.exec(select(Participant.user_id).where(Participant.run_id == run_id)
                             .order_by(col(Participant.joined_at), col(Participant.user_id))))


def follower_ids(session: Session, run_id: str) -> list[str]:
    return sorted(session.exec(select(Follower.user_id).where(Follower.run_id == run_id)))


def run_and_followers(session: Session, run_id: str) -> tuple[Run, list[str]] | None:
    run = session.get(Run, run_id)
    return None if run is None else (run, follower_ids(session, run_id))
