"""Personal settings and the daily/weekly digest's rows: who is due, and the once-a-day claim.

Each helper takes a Session and runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage._sql import rowcount
from storage.models import ChecklistItem, Participant, Reminder, Run, UserSettings

DAILY = "daily"


WEEKLY = "weekly"


FLAGS = {"digest": "daily_digest", "weekly-digest": "weekly_digest", "assigned": "notify_assigned",
         "owner": "notify_owner", "due": "notify_due"}


def get_settings(session: Session, user_id: str) -> UserSettings:
    """The person's settings; the defaults (both digests on) when they never changed any."""
    return session.get(UserSettings, user_id) or UserSettings(user_id=user_id)


def set_setting(session: Session, user_id: str, flag: str, on: bool) -> UserSettings:
    """Set `flag` (a key of FLAGS); the settings after the change."""
    _ensure_rows(session, [user_id])
    session.execute(update(UserSettings).where(col(UserSettings.user_id) == user_id)
                    .values({FLAGS[flag]: on}).execution_options(synchronize_session=False))
    row = session.get(UserSettings, user_id, populate_existing=True)
    assert row is not None
    return row


def wants(session: Session, user_id: str, flag: str) -> bool:
    """Whether the person keeps `flag` (a key of FLAGS) on; everything is on until turned off."""
    return bool(getattr(get_settings(session, user_id), FLAGS[flag]))


def due_users(session: Session, now: int) -> list[str]:
    """People with something to report: open items assigned to them in a run in progress, or an
    overdue status update in a run they own or take part in (the same as `/playbook todo` shows)."""
    assigned = select(ChecklistItem.assignee_id).join(Run, col(Run.id) == ChecklistItem.run_id).where(
        col(ChecklistItem.state).in_(("open", "in_progress")), ChecklistItem.assignee_id != "",
        col(ChecklistItem.hidden).is_(False), Run.status == "in_progress")
    overdue_runs = select(Run.id).join(Reminder, col(Reminder.run_id) == Run.id).where(
        Reminder.kind == "status_update", Run.status == "in_progress",
        col(Reminder.due_at).is_not(None), col(Reminder.due_at) < now)
    owners = select(Run.owner_id).where(col(Run.id).in_(overdue_runs))
    members = select(Participant.user_id).where(col(Participant.run_id).in_(overdue_runs))
    users = set(session.exec(assigned)) | set(session.exec(owners)) | set(session.exec(members))
    return sorted(u for u in users if u)


def claim(session: Session, user_ids: list[str], day: int, monday: bool) -> list[tuple[str, str]]:
    """(user id, DAILY or WEEKLY) for each person whose digest for `day` this caller may send.

    One conditional UPDATE per person moves last_digest_day to `day` only if it is earlier and the
    person wants today's digest, so a second round (or another process) claims nobody twice. On
    Mondays the weekly digest stands in for the daily one: one message a day either way.
    """
    if not user_ids:
        return []
    _ensure_rows(session, user_ids)
    wanted = (or_(col(UserSettings.weekly_digest), col(UserSettings.daily_digest)) if monday
              else col(UserSettings.daily_digest))
    won: list[tuple[str, str]] = []
    for user_id in user_ids:
        result = session.execute(
            update(UserSettings).where(col(UserSettings.user_id) == user_id, col(UserSettings.last_digest_day) < day,
                                       wanted)
            .values(last_digest_day=day).execution_options(synchronize_session=False))
        if rowcount(result) == 1:
            row = session.get(UserSettings, user_id, populate_existing=True)
            assert row is not None
            won.append((user_id, WEEKLY if monday and row.weekly_digest else DAILY))
    return won


def release(session: Session, user_id: str, day: int) -> None:
    """Sending the claimed digest failed: a later round today may try again."""
    session.execute(update(UserSettings).where(col(UserSettings.user_id) == user_id,
                                               col(UserSettings.last_digest_day) == day)
                    .values(last_digest_day=day - 1).execution_options(synchronize_session=False))


def _ensure_rows(session: Session, user_ids: list[str]) -> None:
    # INSERT ... ON CONFLICT DO NOTHING: two processes creating the same person's row both succeed.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{"user_id": u, "daily_digest": True, "weekly_digest": True, "last_digest_day": 0} for u in user_ids]
    session.execute(insert(UserSettings).values(rows).on_conflict_do_nothing(index_elements=["user_id"]))
