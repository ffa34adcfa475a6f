"""Run starts as recorded sequences (storage.models.RunStart): the plan, each step's result, the lease.

handlers/runs.py carries a start forward step by step; every record here is one transaction that is
conditional on the caller still holding the start's lease (`lease_owner`), and renews it. A caller that
lost the lease (it was too slow and another process took over) gets False and must stop. Claiming is a
compare-and-set on the lease the claimer saw, so of two processes claiming the same start one wins.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage._sql import rowcount
from storage.models import Checklist, ChecklistItem, Participant, Run, RunStart
from storage.reminders import STATUS, arm
from storage.runs import SEEN_STATUSES, insert_run
from storage.timeline import add_timeline

LIVE = ("starting", "rolling_back")  # states still to be carried forward
# A start's run is "starting" until complete and "failed" once rolled back; people see only these:
SEEN = SEEN_STATUSES


def insert_start(session: Session, start: RunStart, alongside: Callable[[Session, RunStart], object] | None = None
                 ) -> None:
    """Record a start; `alongside(session, start)` writes what must be recorded with it in the same
    transaction (an alert delivery: storage/alerts.py), and may raise to record neither."""
    session.add(start)
    session.flush()
    if alongside is not None:
        alongside(session, start)


def get_start(session: Session, run_id: str) -> RunStart | None:
    return session.get(RunStart, run_id)


def unfinished(session: Session) -> list[RunStart]:
    """Every start still to be carried forward (few: a start takes about a second)."""
    return list(session.exec(select(RunStart).where(col(RunStart.state).in_(LIVE))
                             .order_by(col(RunStart.created_at), col(RunStart.run_id))))


def claim(session: Session, run_id: str, seen_owner: str, seen_until: int, me: str, now: int,
          lease_ms: int) -> RunStart | None:
    """Take the start's lease if it is still as the claimer saw it; the start, or None if another got it."""
    result = session.execute(
        update(RunStart).where(col(RunStart.run_id) == run_id, col(RunStart.state).in_(LIVE),
                               col(RunStart.lease_owner) == seen_owner, col(RunStart.lease_until) == seen_until)
        .values(lease_owner=me, lease_until=now + lease_ms).execution_options(synchronize_session=False))
    if rowcount(result) != 1:
        return None
    start = session.get(RunStart, run_id)
    if start is not None:
        session.refresh(start)
    return start


def renew(session: Session, run_id: str, me: str, now: int, lease_ms: int) -> bool:
    """Keep holding the lease while a slow step runs; False once it is someone else's."""
    return _mine(session, run_id, me, {"lease_until": now + lease_ms})


def _mine(session: Session, run_id: str, me: str, values: dict[str, Any]) -> bool:
    result = session.execute(update(RunStart).where(col(RunStart.run_id) == run_id,
                                                    col(RunStart.lease_owner) == me,
                                                    col(RunStart.state).in_(LIVE))
                             .values(**values).execution_options(synchronize_session=False))
    return rowcount(result) == 1


def record(session: Session, run_id: str, me: str, now: int, lease_ms: int, values: dict[str, Any], *,
           run: Run | None = None, checklists: list[tuple[Checklist, list[ChecklistItem]]] | None = None,
           run_values: dict[str, Any] | None = None, checklist_posts: dict[str, str] | None = None,
           participants: list[str] | None = None) -> bool:
    """Record a step's result on the start (`values`) and, in the same transaction, what it means for the
    run's own rows: the run itself (first step), its columns, its checklists' posts, its participants.
    False, changing nothing, when the caller no longer holds the lease."""
    if not _mine(session, run_id, me, {**values, "lease_until": now + lease_ms}):
        return False
    if run is not None:
        insert_run(session, run, checklists or [], [], now)
    if run_values:
        session.execute(update(Run).where(col(Run.id) == run_id).values(**run_values)
                        .execution_options(synchronize_session=False))
    for checklist_id, post_id in (checklist_posts or {}).items():
        session.execute(update(Checklist).where(col(Checklist.id) == checklist_id, col(Checklist.run_id) == run_id)
                        .values(post_id=post_id).execution_options(synchronize_session=False))
    if participants:
        known = set(session.exec(select(Participant.user_id).where(Participant.run_id == run_id)))
        for uid in dict.fromkeys(participants):
            if uid not in known:
                session.add(Participant(run_id=run_id, user_id=uid, joined_at=now))
        session.flush()
    return True


def complete(session: Session, run_id: str, me: str, now: int, lease_ms: int) -> tuple[bool, int | None]:
    """The run goes live: in progress, its `run_started` event, its status reminder armed. Returns (still
    the lease holder, the reminder's due time or None)."""
    if not _mine(session, run_id, me, {"completed": True, "lease_until": now + lease_ms}):
        return False, None
    run = session.get(Run, run_id)
    assert run is not None  # written by the first step; runs are never deleted
    session.execute(update(Run).where(col(Run.id) == run_id, col(Run.status) == "starting")
                    .values(status="in_progress").execution_options(synchronize_session=False))
    start = session.get(RunStart, run_id)
    origin = start.origin if start is not None else ""
    summary = f"Run started from {run.playbook_title}" + (f" by {origin}" if origin else "")
    add_timeline(session, run_id, "run_started", now, run.creator_id, summary,
                 {"channel_id": run.channel_id, **({"origin": origin} if origin else {})})
    due = None
    if run.status_updates_enabled and run.reminder_interval_s > 0:
        due = run.created_at + run.reminder_interval_s * 1000
        arm(session, run_id, STATUS, due, run.reminder_interval_s)
    return True, due


def release(session: Session, run_id: str, me: str, step: str, attempts: int, next_attempt_at: int) -> bool:
    """Let go of the start until `next_attempt_at`, when any process may take it up again."""
    return _mine(session, run_id, me, {"lease_owner": "", "lease_until": 0, "step": step, "attempts": attempts,
                                       "next_attempt_at": next_attempt_at})


def finish(session: Session, run_id: str, me: str, now: int, state: str, run_status: str | None = None) -> bool:
    """The start is over ("done" or "failed") and the starter was told; the run's status with it."""
    if not _mine(session, run_id, me, {"state": state, "told": True, "finished_at": now, "lease_owner": "",
                                       "lease_until": 0}):
        return False
    if run_status is not None:
        session.execute(update(Run).where(col(Run.id) == run_id).values(status=run_status)
                        .execution_options(synchronize_session=False))
    return True


def channel_of_another_run(session: Session, channel_id: str, run_id: str) -> bool:
    """Whether some other run (or start) already owns this channel: then it is not ours to adopt."""
    other = session.exec(select(Run.id).where(Run.channel_id == channel_id, Run.id != run_id)).first()
    if other is not None:
        return True
    return session.exec(select(RunStart.run_id).where(RunStart.channel_id == channel_id,
                                                      RunStart.run_id != run_id)).first() is not None
