"""What `/metrics` reports from the rows: a handful of COUNT queries, run at scrape time.

Computed from the database (not kept in a process's memory), so every bot process sharing it answers
the same numbers. Each query is one aggregate over an indexed column or a small join of the runs in
progress; none reads a whole run or the timelines (about 20 ms in all over 10,000 runs on SQLite).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import Follower, Participant, Reminder, Run, StatusUpdate
from storage.reminders import STATUS

IN_PROGRESS = "in_progress"
FINISHED = "finished"


@dataclass(frozen=True)
class Snapshot:
    runs_active: int  # runs in progress
    runs_created: int  # runs ever started (in progress or finished; not a start still setting up or rolled back)
    runs_finished: int  # runs finished now (a restored run leaves this count until finished again)
    reminders_outstanding: int  # status-update reminders armed on runs in progress
    reminders_due: int  # of those, due now and not yet posted (the reminder job's backlog)
    updates_overdue: int  # runs in progress whose status update is late: last update (or start) + interval < now
    retros_outstanding: int  # finished runs with a retrospective, neither published nor cancelled
    active_participants: int  # distinct people taking part in runs in progress
    active_followers: int  # distinct people following runs in progress


def snapshot(session: Session, now: int) -> Snapshot:
    by_status = dict(session.exec(select(Run.status, func.count()).group_by(col(Run.status))).all())
    armed = (select(func.count()).select_from(Reminder).join(Run, col(Run.id) == Reminder.run_id)
             .where(Reminder.kind == STATUS, Run.status == IN_PROGRESS, col(Reminder.due_at).is_not(None)))
    outstanding = session.exec(armed).one()
    due = session.exec(armed.where(col(Reminder.due_at) <= now)).one()
    # Per run in progress, its latest update through ix_status_updates_run_at (not a GROUP BY of them all).
    last_update = select(func.max(StatusUpdate.at)).where(StatusUpdate.run_id == Run.id).scalar_subquery()
    overdue = session.exec(
        select(func.count()).select_from(Run)
        .where(Run.status == IN_PROGRESS, col(Run.status_updates_enabled), col(Run.reminder_interval_s) > 0,
               func.coalesce(last_update, Run.created_at) + col(Run.reminder_interval_s) * 1000 < now)
    ).one()
    retros = session.exec(select(func.count()).select_from(Run).where(
        Run.status == FINISHED, col(Run.retrospective_enabled), Run.retrospective_status == "")).one()
    participants = session.exec(
        select(func.count(func.distinct(Participant.user_id))).select_from(Participant)
        .join(Run, col(Run.id) == Participant.run_id).where(Run.status == IN_PROGRESS)).one()
    followers = session.exec(
        select(func.count(func.distinct(Follower.user_id))).select_from(Follower)
        .join(Run, col(Run.id) == Follower.run_id).where(Run.status == IN_PROGRESS)).one()
    return Snapshot(
        runs_active=int(by_status.get(IN_PROGRESS, 0)),
        runs_created=int(by_status.get(IN_PROGRESS, 0)) + int(by_status.get(FINISHED, 0)),
        runs_finished=int(by_status.get(FINISHED, 0)), reminders_outstanding=int(outstanding), reminders_due=int(due),
        updates_overdue=int(overdue), retros_outstanding=int(retros), active_participants=int(participants),
        active_followers=int(followers))
