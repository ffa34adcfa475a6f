"""Keyword offers (storage.models.KeywordOffer): one per thread and playbook, taken once.

Each helper takes a Session and runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from storage._sql import rowcount
from storage.models import KeywordOffer, RunStart
from storage.starts import insert_start

# An offer "starting" this long was left by a process that stopped between the click and recording the
# start (a "starting" offer never has a start row: the row and the move to "started" are one
# transaction, start_recorder): it may be taken again.
STALE_MS = 10 * 60 * 1000


def claim(session: Session, offer: KeywordOffer) -> bool:
    """Write the offer unless the thread already has one for this playbook (by anyone, in any process):
    True when this call wrote it, so this caller sends it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = offer.model_dump()
    inserted = session.execute(insert(KeywordOffer).values(**values)
                               .on_conflict_do_nothing(index_elements=["root_post_id", "playbook_id"])
                               .returning(col(KeywordOffer.id)))
    return inserted.first() is not None


def get(session: Session, offer_id: str) -> KeywordOffer | None:
    return session.get(KeywordOffer, offer_id)


def sent(session: Session, offer_id: str, mode: str, offer_post_id: str, now: int) -> None:
    session.execute(update(KeywordOffer).where(col(KeywordOffer.id) == offer_id)
                    .values(mode=mode, offer_post_id=offer_post_id, updated_at=now))


def takeable(offer: KeywordOffer, now: int) -> bool:
    """Offered, or left "starting" by a start that recorded nothing for STALE_MS."""
    return offer.state == "offered" or (offer.state == "starting" and not offer.run_id
                                        and offer.updated_at <= now - STALE_MS)


def take(session: Session, offer_id: str, user_id: str, now: int) -> bool:
    """Offered (or stale "starting", see takeable) -> starting, by `user_id`: True for the one click (of any
    process) that wins. The take is known by (user_id, now): release and start_recorder act on it only."""
    return _move_takeable(session, offer_id, now, state="starting", acted_by=user_id)


def _move_takeable(session: Session, offer_id: str, now: int, **values: str) -> bool:
    result = session.execute(
        update(KeywordOffer)
        .where(col(KeywordOffer.id) == offer_id,
               or_(col(KeywordOffer.state) == "offered",
                   and_(col(KeywordOffer.state) == "starting", col(KeywordOffer.run_id) == "",
                        col(KeywordOffer.updated_at) <= now - STALE_MS)))
        .values(updated_at=now, **values))
    return rowcount(result) == 1


def _move_taken(session: Session, offer_id: str, user_id: str, taken_at: int, **values: object) -> bool:
    """Move the offer from the take (user_id, taken_at), if it is still that take."""
    result = session.execute(update(KeywordOffer)
                             .where(col(KeywordOffer.id) == offer_id, col(KeywordOffer.state) == "starting",
                                    col(KeywordOffer.acted_by) == user_id,
                                    col(KeywordOffer.updated_at) == taken_at)
                             .values(**values))
    return rowcount(result) == 1


def release(session: Session, offer_id: str, user_id: str, taken_at: int, now: int) -> bool:
    """Starting -> offered again: the start was refused or stopped before anything was recorded. A take
    whose start was recorded (the offer is "started" then) or that was taken over is left as it is."""
    return _move_taken(session, offer_id, user_id, taken_at, state="offered", acted_by="", updated_at=now)


def start_recorder(offer_id: str, user_id: str, taken_at: int) -> Callable[[Session, RunStart], bool]:
    """How StartService.begin records a start from the offer (its `insert`): the start row and the offer's
    move to "started" with the run's id, in one transaction; nothing (False) when the take is no longer
    this one (taken over once stale)."""

    def insert(session: Session, start: RunStart) -> bool:
        if not _move_taken(session, offer_id, user_id, taken_at, state="started", run_id=start.run_id,
                           updated_at=start.created_at):
            return False
        insert_start(session, start)
        return True

    return insert


def dismiss(session: Session, offer_id: str, user_id: str, now: int) -> bool:
    return _move_takeable(session, offer_id, now, state="dismissed", acted_by=user_id)
