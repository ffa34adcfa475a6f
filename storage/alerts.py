"""Alert deliveries and alert groups (storage.models.AlertDelivery, AlertGroup): what handlers/alerts.py
records before it answers a vendor, so a repeat is recognised in any bot process and a crash after the
answer loses nothing (the run start is a RunStart row; the channel post an outbox row here).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._sql import rowcount
from storage.db import read_existing
from storage.models import AlertDelivery, AlertGroup, Run, RunStart
from storage.starts import LIVE, insert_start

OPEN_RUN = ("starting", "in_progress")


class Duplicate(Exception):
    """This delivery was recorded before (a retry, or another bot process got it first)."""

    def __init__(self, row: AlertDelivery | None = None) -> None:
        super().__init__("duplicate alert delivery")
        self.row = row


class Raced(Exception):
    """Another process recorded this delivery or opened this group at the same moment: look again."""


class GroupOpen(Exception):
    """The alert's group already has a run that takes its alerts: post to it instead of starting one."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"alert group open in run {run_id}")
        self.run_id = run_id


def find(session: Session, source: str, dedup: str) -> AlertDelivery | None:
    return session.exec(select(AlertDelivery).where(AlertDelivery.source == source,
                                                    AlertDelivery.dedup == dedup)).first()


def start_recorder(delivery: AlertDelivery, group: AlertGroup) -> Callable[[Session, RunStart], bool]:
    """How StartService.begin records the start (its `insert`): the start row, then the delivery and its
    group, in one transaction."""

    def insert(session: Session, start: RunStart) -> bool:
        insert_start(session, start)
        record_start(session, delivery, group, start)
        return True

    return insert


def open_run(session: Session, source: str, group_hash: str) -> str | None:
    """The run an open alert group started, if it still takes alerts (starting or in progress); a group
    whose run is over (finished, or its start failed) is closed here, so the next firing starts anew."""
    group = session.exec(select(AlertGroup).where(AlertGroup.source == source,
                                                  AlertGroup.open_hash == group_hash)).first()
    if group is None:
        return None
    run = session.get(Run, group.run_id)
    start = session.get(RunStart, group.run_id)
    starting = start is not None and start.state in LIVE
    if starting or (run is not None and run.status in OPEN_RUN):
        return group.run_id
    session.execute(update(AlertGroup).where(col(AlertGroup.id) == group.id).values(open_hash=None)
                    .execution_options(synchronize_session=False))
    return None


def peek(session: Session, source: str, dedup: str, group_hash: str) -> tuple[bool, str | None]:
    """(recorded already, the open group's run id) before anything is written."""
    return find(session, source, dedup) is not None, open_run(session, source, group_hash)


def record_start(session: Session, delivery: AlertDelivery, group: AlertGroup, start: RunStart) -> None:
    """In the transaction that writes the run start (start_recorder): the delivery and its
    group, opened by this run. Raises Duplicate, GroupOpen or Raced (rolling the start back with it) when
    another delivery or process got there first."""
    if find(session, delivery.source, delivery.dedup) is not None:
        raise Duplicate()
    running = open_run(session, group.source, group.group_hash)
    if running is not None:
        raise GroupOpen(running)
    delivery.run_id = group.run_id = start.run_id
    group.open_hash = group.group_hash
    session.add(delivery)
    session.add(group)
    try:
        session.flush()
    except IntegrityError:
        raise Raced() from None  # a concurrent process: the caller looks again


def record(session: Session, delivery: AlertDelivery) -> AlertDelivery:
    """Record a delivery that starts nothing (posted to an open run, no route, nothing open). Raises
    Duplicate when it was recorded before."""
    existing = find(session, delivery.source, delivery.dedup)
    if existing is not None:
        raise Duplicate(existing)
    try:
        with session.begin_nested():
            session.add(delivery)
    except IntegrityError:
        raise Duplicate(find(session, delivery.source, delivery.dedup)) from None
    return delivery


def pending_posts(session: Session, now: int) -> list[AlertDelivery]:
    """Deliveries whose channel post is still to be made and that nobody holds just now, oldest first."""
    return list(session.exec(select(AlertDelivery).where(AlertDelivery.post_state == "pending",
                                                         col(AlertDelivery.post_until) < now)
                             .order_by(col(AlertDelivery.received_at), col(AlertDelivery.id)).limit(100)))


def claim_post(session: Session, delivery_id: str, me: str, now: int, lease_ms: int) -> AlertDelivery | None:
    """Take the delivery's post (compare-and-set on its lease): of two processes one gets it. A post let go
    (no holder) may be taken before its `post_until` (the time the poll looks again)."""
    free = or_(col(AlertDelivery.post_holder) == "", col(AlertDelivery.post_until) < now)
    result = session.execute(update(AlertDelivery)
                             .where(col(AlertDelivery.id) == delivery_id, col(AlertDelivery.post_state) == "pending",
                                    free)
                             .values(post_holder=me, post_until=now + lease_ms)
                             .execution_options(synchronize_session=False))
    if rowcount(result) != 1:
        return None
    row = session.get(AlertDelivery, delivery_id)
    if row is not None:
        session.refresh(row)
    return row


def pending_for_run(session: Session, run_id: str) -> list[str]:
    """The ids of a run's deliveries whose post is still to be made, oldest first."""
    return list(session.exec(select(AlertDelivery.id).where(AlertDelivery.run_id == run_id,
                                                            AlertDelivery.post_state == "pending")
                             .order_by(col(AlertDelivery.received_at), col(AlertDelivery.id))))


def settle_post(session: Session, delivery_id: str, me: str, state: str, next_at: int = 0) -> bool:
    """"done" (posted, or nothing left to post to), or "pending" again from `next_at` (the run is still
    starting, or Mattermost failed)."""
    values: dict[str, Any] = {"post_state": state, "post_holder": "", "post_until": next_at}
    result = session.execute(update(AlertDelivery)
                             .where(col(AlertDelivery.id) == delivery_id, col(AlertDelivery.post_holder) == me)
                             .values(**values).execution_options(synchronize_session=False))
    return rowcount(result) == 1


def unrouted(session: Session, since: int) -> list[AlertDelivery]:
    """Deliveries no playbook route matched, or whose route could not start a run ("unusable", the reason in
    details["unusable"]), since `since` (for `python -m bot check`), newest first."""
    return list(session.exec(select(AlertDelivery).where(col(AlertDelivery.outcome).in_(("no_route", "unusable")),
                                                         col(AlertDelivery.received_at) >= since)
                             .order_by(col(AlertDelivery.received_at).desc()).limit(20)))


def run_status(session: Session, run_id: str) -> tuple[str, str]:
    """(the run's status, its channel id); ("", "") while its row is not written yet."""
    run = session.get(Run, run_id)
    if run is None:
        start = session.get(RunStart, run_id)
        return ("starting" if start is not None and start.state in LIVE else "failed"), ""
    return run.status, run.channel_id


def all_deliveries(session: Session) -> list[AlertDelivery]:
    """Every delivery recorded, oldest first (tests, and the operators' look at what came in)."""
    return list(session.exec(select(AlertDelivery).order_by(col(AlertDelivery.received_at), col(AlertDelivery.id))))


def read_unrouted(url: str, since: int) -> list[AlertDelivery]:
    """For `python -m bot check`: deliveries no route matched or unusable since `since` (none when the database is not
    there or not migrated yet). Writes nothing."""
    return read_existing(url, lambda session: unrouted(session, since), [])
