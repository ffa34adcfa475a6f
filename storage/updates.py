"""Query helpers for status updates, reminders, finishing and the retrospective.

Each takes a Session and runs inside the caller's transaction (Database.run). Reminders are rows, one
per (run, kind); a reminder is *claimed* by a conditional UPDATE that moves its `due_at` only if it
still holds the value the claimer read, so of two jobs (or two bot processes) that see the same due
reminder exactly one wins and posts it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage.ids import new_id
from storage.models import ChecklistItem, Follower, Reminder, Run, StatusUpdate, TimelineEvent, WebhookStatus
from storage.queries import add_timeline

STATUS = "status_update"
RETRO = "retrospective"
# How long a claimed reminder is held while it is posted. A claimer killed before `mark_sent` loses only
# this: the reminder is due again when the lease ends and another round (or process) posts it, late.
# Longer than a post can take (gateway timeout and retries), so a slow post is not taken over and doubled.
LEASE_S = 300
MAX_LIVE_POSTS = 50  # reminder posts remembered per reminder; older unanswered ones keep their buttons


# --- reminders --------------------------------------------------------------------------------------

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
        session.execute(update(Reminder).where(Reminder.id == row.id).values(**values)
                        .execution_options(synchronize_session=False))
    session.flush()


def move(session: Session, run_id: str, kind: str, due_at: int | None) -> bool:
    """Move the pending reminder (snooze); False when there is none."""
    result = session.execute(update(Reminder).where(Reminder.run_id == run_id, Reminder.kind == kind)
                             .values(due_at=due_at).execution_options(synchronize_session=False))
    return result.rowcount == 1


def get_reminder(session: Session, run_id: str, kind: str) -> Reminder | None:
    return session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == kind)).first()


def next_due(session: Session) -> int | None:
    return session.exec(select(func.min(Reminder.due_at)).where(col(Reminder.due_at).is_not(None))).one()


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
    rows = list(session.exec(
        select(Reminder.id, Reminder.run_id, Reminder.kind, Reminder.due_at, Reminder.interval_s,
               Reminder.sent_count, Reminder.post_ids)
        .where(col(Reminder.due_at).is_not(None), col(Reminder.due_at) <= now)
        .order_by(Reminder.due_at, Reminder.id).limit(limit)))
    won: list[Claimed] = []
    for rid, run_id, kind, due_at, interval_s, sent_count, post_ids in rows:
        next_at = now + interval_s * 1000 if interval_s > 0 else None
        result = session.execute(
            update(Reminder).where(Reminder.id == rid, Reminder.due_at == due_at).values(due_at=lease)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
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
        session.execute(update(Reminder).where(Reminder.id == c.reminder_id, Reminder.due_at == c.lease_until)
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
        update(Reminder).where(Reminder.id == c.reminder_id, Reminder.due_at == c.lease_until)
        .values(due_at=c.next_at, last_sent_at=now, sent_count=Reminder.sent_count + 1, post_ids=post_ids)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def release(session: Session, c: Claimed, retry_at: int) -> None:
    """Posting a claimed reminder failed: try again at `retry_at`, unless someone moved it meanwhile."""
    session.execute(update(Reminder).where(Reminder.id == c.reminder_id, Reminder.due_at == c.lease_until)
                    .values(due_at=retry_at).execution_options(synchronize_session=False))


def take_posts(session: Session, run_id: str, kind: str) -> list[str]:
    """The reminder posts still showing buttons, now forgotten, so only one caller edits them."""
    row = session.exec(select(Reminder).where(Reminder.run_id == run_id, Reminder.kind == kind)
                       .with_for_update()).first()
    if row is None or not row.post_ids:
        return []
    taken = list(row.post_ids)
    session.execute(update(Reminder).where(Reminder.id == row.id).values(post_ids=[])
                    .execution_options(synchronize_session=False))
    return taken


def note_post(session: Session, run_id: str, kind: str, post_id: str) -> None:
    """A reminder posted outside the service (the first retrospective reminder, on finish)."""
    row = get_reminder(session, run_id, kind)
    if row is not None:
        session.execute(update(Reminder).where(Reminder.id == row.id)
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
    session.execute(update(Run).where(Run.id == run_id)
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
    add_timeline(session, run_id, "reminder_snoozed", now, actor_id, f"snoozed for {seconds} s",
                 {"seconds": seconds, "due_at": due})
    return due


def open_item_count(session: Session, run_id: str) -> int:
    return int(session.exec(select(func.count()).select_from(ChecklistItem).where(
        ChecklistItem.run_id == run_id, col(ChecklistItem.state).in_(("open", "in_progress")))).one())


# --- finish, restore, retrospective -----------------------------------------------------------------

def finish(session: Session, run_id: str, actor_id: str, now: int, retro_due: int | None,
           retro_interval_s: int) -> Run | None:
    """Mark the run finished (once: a second finish changes nothing and returns None)."""
    result = session.execute(update(Run).where(Run.id == run_id, Run.status == "in_progress")
                             .values(status="finished", finished_at=now)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
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
    result = session.execute(update(Run).where(Run.id == run_id, Run.status == "finished")
                             .values(status="in_progress", finished_at=None)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
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
    session.execute(update(Run).where(Run.id == run_id).values(**values)
                    .execution_options(synchronize_session=False))
    move(session, run_id, RETRO, None)
    kind = "retrospective_published" if status == "published" else "retrospective_cancelled"
    add_timeline(session, run_id, kind, now, actor_id,
                 "Retrospective published" if status == "published" else "No retrospective for this run")
    session.refresh(run)
    return run


def timeline(session: Session, run_id: str) -> list[TimelineEvent]:
    return list(session.exec(select(TimelineEvent).where(TimelineEvent.run_id == run_id)
                             .order_by(TimelineEvent.at, TimelineEvent.id)))


def follower_ids(session: Session, run_id: str) -> list[str]:
    return sorted(session.exec(select(Follower.user_id).where(Follower.run_id == run_id)))


# --- webhooks ---------------------------------------------------------------------------------------

def record_webhook(session: Session, url: str, event: str, at: int, ok: bool, error: str = "") -> None:
    row = session.get(WebhookStatus, url)
    if row is None:
        row = WebhookStatus(url=url)
        session.add(row)
    row.last_event, row.last_at, row.ok, row.error = event, at, ok, error[:1000]
    row.failures = 0 if ok else row.failures + 1


def failing_webhooks(session: Session) -> list[WebhookStatus]:
    return list(session.exec(select(WebhookStatus).where(WebhookStatus.ok == False)  # noqa: E712
                             .order_by(WebhookStatus.url)))


def _first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = ["STATUS", "RETRO", "LEASE_S", "Claimed", "arm", "move", "claim_due", "mark_sent", "release",
           "take_posts", "note_post", "record_sent", "next_due",
           "record_update", "snooze", "finish", "restore", "set_retrospective", "timeline"]
