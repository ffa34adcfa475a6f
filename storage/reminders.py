"""Reminders (status updates due, retrospectives still to write) and the status updates that answer them.

Each takes a Session and runs inside the caller's transaction (Database.run). Reminders are rows, one
per (run, kind); a reminder is *claimed* by a conditional UPDATE that moves its `due_at` only if it
still holds the value the claimer read, so of two jobs (or two bot processes) that see the same due
reminder exactly one wins and posts it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.domain.durations import format_duration
from storage._sql import rowcount
from storage.ids import new_id
from storage.models import Follower, Reminder, Run, StatusUpdate, TimelineEvent
from storage.timeline import add_timeline

STATUS = "status_update"


RETRO = "retrospective"


# How long a claimed reminder is held while it is posted. A claimer killed before `mark_sent` loses only
# this: the reminder is due again when the lease ends and another round (or process) posts it, late.
# Longer than a post can take (gateway timeout and retries), so a slow post is not taken over and doubled.
LEASE_S = 300


MAX_LIVE_POSTS = 50  # reminder posts remembered per reminder; older unanswered ones keep their buttons


def arm(session: Session, run_id: str, kind: str, due_at: int | None, interval_s: int,
        reset_count: bool = True) -> None:
    """Set the one pending reminder of (run, kind): due at `due_at` (None = off), repeating every interval."""
    row = session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == kind)).first()
    if row is None:
        session.add(Reminder(id=new_id(), run_id=run_id, kind=kind, due_at=due_at, interval_s=interval_s))
    else:
        values: dict[str, Any] = {"due_at": due_at, "interval_s": interval_s}
        if reset_count:
            values["sent_count"] = 0
        session.execute(update(Reminder).where(col(Reminder.id) == row.id).values(**values)
                        .execution_options(synchronize_session=False))
    session.flush()


def move(session: Session, run_id: str, kind: str, due_at: int | None) -> bool:
    """Move the pending reminder (snooze); False when there is none."""
    result = session.execute(update(Reminder).where(col(Reminder.run_id) == run_id, col(Reminder.kind) == kind)
                             .values(due_at=due_at).execution_options(synchronize_session=False))
    return rowcount(result) == 1


def get_reminder(session: Session, run_id: str, kind: str) -> Reminder | None:
    return session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == kind)).first()


def next_due(session: Session) -> int | None:
    return session.exec(select(func.min(Reminder.due_at)).where(col(Reminder.due_at).is_not(None))).one()


def status_reminder(session: Session, run_id: str) -> Reminder | None:
    return session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == "status_update")).first()


@dataclass
class Claimed:
    """A reminder this process won, with what it takes to post it."""

    reminder_id: str
    run_id: str
    kind: str
    due_at: int  # the due time it was claimed at
    next_at: int | None  # where mark_sent moves it
    sent_count: int  # including this one
    interval_s: int
    lease_until: int = 0  # due_at while claimed: mark_sent and release apply only if it is still this
    post_ids: list[str] = field(default_factory=list)  # its earlier posts still showing buttons
    run: Run | None = None
    follower_ids: list[str] = field(default_factory=list)
    last_update_at: int | None = None


def claim_due(session: Session, now: int, limit: int, lease_s: int = LEASE_S) -> list[Claimed]:
    """Claim up to `limit` reminders due at `now`, oldest first, and load their runs.

    Claiming moves `due_at` to a lease (now + LEASE_S); the caller posts, then `mark_sent` moves it to the
    next due time, or `release` to a retry. The next due time counts from `now`, not from the old due
    time: a bot that was down for three intervals posts one late reminder, not three.
    """
    lease = now + lease_s * 1000
    # sqlmodel's select() is typed for up to four columns; SQLAlchemy's takes any number (same SQL).
    rows = list(session.execute(
        sa_select(col(Reminder.id), col(Reminder.run_id), col(Reminder.kind), col(Reminder.due_at),
                  col(Reminder.interval_s), col(Reminder.sent_count), col(Reminder.post_ids))
        .where(col(Reminder.due_at).is_not(None), col(Reminder.due_at) <= now)
        .order_by(col(Reminder.due_at), col(Reminder.id)).limit(limit)))
    won: list[Claimed] = []
    for rid, run_id, kind, due_at, interval_s, sent_count, post_ids in rows:
        next_at = now + interval_s * 1000 if interval_s > 0 else None
        result = session.execute(
            update(Reminder).where(col(Reminder.id) == rid, col(Reminder.due_at) == due_at).values(due_at=lease)
            .execution_options(synchronize_session=False))
        if rowcount(result) == 1:
            won.append(Claimed(rid, run_id, kind, due_at, next_at, sent_count + 1, interval_s, lease,
                               list(post_ids or [])))
    if not won:
        return won
    run_ids = sorted({c.run_id for c in won})
    runs = {r.id: r for r in session.exec(select(Run).where(col(Run.id).in_(run_ids)))}
    followers: dict[str, list[str]] = {}
    for run_id, user_id in session.exec(select(Follower.run_id, Follower.user_id)
                                        .where(col(Follower.run_id).in_(run_ids))):
        followers.setdefault(run_id, []).append(user_id)
    last = dict(session.exec(select(StatusUpdate.run_id, func.max(StatusUpdate.at))
                             .where(col(StatusUpdate.run_id).in_(run_ids)).group_by(StatusUpdate.run_id)).all())
    stale = []
    for c in won:
        c.run = runs.get(c.run_id)
        c.follower_ids = sorted(followers.get(c.run_id, []))
        c.last_update_at = last.get(c.run_id)
        if not still_wanted(c):
            stale.append(c)
    for c in stale:  # the run moved on (finished, published): the reminder ends here
        session.execute(update(Reminder).where(col(Reminder.id) == c.reminder_id, col(Reminder.due_at) == c.lease_until)
                        .values(due_at=None).execution_options(synchronize_session=False))
    return [c for c in won if c not in stale]


def still_wanted(c: Claimed) -> bool:
    run = c.run
    if run is None:
        return False
    if c.kind == STATUS:
        return run.status == "in_progress" and run.status_updates_enabled and run.reminder_interval_s > 0
    if c.kind == RETRO:
        return run.status == "finished" and run.retrospective_enabled and not run.retrospective_status
    return False


def mark_sent(session: Session, c: Claimed, now: int, post_id: str) -> bool:
    """The claimed reminder was posted as `post_id`: arm the next one and remember the post. False when
    someone moved the reminder meanwhile (an update, a snooze): their due time stands.

    Holding the lease, this is the only writer of post_ids: take_post runs after an update or finish,
    which first moves due_at, so a claim that raced them fails here instead of overwriting.
    """
    post_ids = [*c.post_ids, post_id][-MAX_LIVE_POSTS:]
    result = session.execute(
        update(Reminder).where(col(Reminder.id) == c.reminder_id, col(Reminder.due_at) == c.lease_until)
        .values(due_at=c.next_at, last_sent_at=now, sent_count=Reminder.sent_count + 1, post_ids=post_ids)
        .execution_options(synchronize_session=False))
    return rowcount(result) == 1


def release(session: Session, c: Claimed, retry_at: int) -> None:
    """Posting a claimed reminder failed: try again at `retry_at`, unless someone moved it meanwhile."""
    session.execute(update(Reminder).where(col(Reminder.id) == c.reminder_id, col(Reminder.due_at) == c.lease_until)
                    .values(due_at=retry_at).execution_options(synchronize_session=False))


def bookkeep(session: Session, sent: list[tuple[Claimed, str, str, dict[str, Any]]], failed: list[Claimed],
             now: int, retry_at: int) -> list[bool]:
    """After a round's posts: arm the next reminder of each one sent (and say which were still ours),
    record them on the timeline, and release the failed ones for a retry at `retry_at`."""
    owned = [mark_sent(session, c, now, post_id) for c, post_id, _, _ in sent]
    record_sent(session, [(c.run_id, now, summary, details) for c, _, summary, details in sent])
    for c in failed:
        release(session, c, retry_at)
    return owned


def take_posts(session: Session, run_id: str, kind: str) -> list[str]:
    """The reminder posts still showing buttons, now forgotten, so only one caller edits them."""
    row = session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == kind)
                       .with_for_update()).first()
    if row is None or not row.post_ids:
        return []
    taken = list(row.post_ids)
    session.execute(update(Reminder).where(col(Reminder.id) == row.id).values(post_ids=[])
                    .execution_options(synchronize_session=False))
    return taken


def note_post(session: Session, run_id: str, kind: str, post_id: str) -> None:
    """A reminder posted outside the service (the first retrospective reminder, on finish)."""
    row = get_reminder(session, run_id, kind)
    if row is not None:
        session.execute(update(Reminder).where(col(Reminder.id) == row.id)
                        .values(post_ids=[*(row.post_ids or []), post_id][-MAX_LIVE_POSTS:])
                        .execution_options(synchronize_session=False))


def record_sent(session: Session, sent: list[tuple[str, int, str, dict[str, Any]]]) -> None:
    """Timeline `reminder_sent` for each (run_id, at, summary, details)."""
    session.add_all([TimelineEvent(id=new_id(), run_id=run_id, type="reminder_sent", at=at, summary=summary,
                                   details=details) for run_id, at, summary, details in sent])


# --- status updates ---------------------------------------------------------------------------------


def last_update(session: Session, run_id: str) -> StatusUpdate | None:
    return session.exec(select(StatusUpdate).where(StatusUpdate.run_id == run_id)
                        .order_by(col(StatusUpdate.at).desc(), col(StatusUpdate.id).desc())).first()


def record_update(session: Session, run_id: str, author_id: str, message: str, now: int,
                  interval_s: int) -> StatusUpdate | None:
    """Store an update and re-arm the reminder `interval_s` from now (0 = off). None if not in progress."""
    run = session.get(Run, run_id)
    if run is None or run.status != "in_progress":
        return None
    row = StatusUpdate(id=new_id(), run_id=run_id, at=now, author_id=author_id, message=message)
    session.add(row)
    session.execute(update(Run).where(col(Run.id) == run_id)
                    .values(reminder_interval_s=interval_s, status_updates_enabled=True)
                    .execution_options(synchronize_session=False))
    arm(session, run_id, STATUS, now + interval_s * 1000 if interval_s > 0 else None, interval_s)
    add_timeline(session, run_id, "status_updated", now, author_id, _first_line(message),
                 {"status_update_id": row.id, "reminder_s": interval_s})
    return row


def snooze(session: Session, run_id: str, actor_id: str, seconds: int, now: int) -> int | None:
    """Move the status reminder to now + seconds; the new due time, or None when there is none."""
    run = session.get(Run, run_id)
    if run is None or run.status != "in_progress" or run.reminder_interval_s <= 0:
        return None
    due = now + seconds * 1000
    if not move(session, run_id, STATUS, due):
        arm(session, run_id, STATUS, due, run.reminder_interval_s)
    add_timeline(session, run_id, "reminder_snoozed", now, actor_id,
                 f"snoozed for {format_duration(timedelta(seconds=seconds))}",
                 {"seconds": seconds, "due_at": due})
    return due


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
