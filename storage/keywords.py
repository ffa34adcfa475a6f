"""Keyword offers (storage.models.KeywordOffer): one per thread and playbook, taken once.

Each helper takes a Session and runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from storage._sql import rowcount
from storage.models import KeywordOffer


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


def _move(session: Session, offer_id: str, before: str, after: str, now: int, **values: str) -> bool:
    result = session.execute(update(KeywordOffer)
                             .where(col(KeywordOffer.id) == offer_id, col(KeywordOffer.state) == before)
                             .values(state=after, updated_at=now, **values))
    return rowcount(result) == 1


def take(session: Session, offer_id: str, user_id: str, now: int) -> bool:
    """Offered -> starting, by `user_id`: True for the one click (of any process) that wins."""
    return _move(session, offer_id, "offered", "starting", now, acted_by=user_id)


def release(session: Session, offer_id: str, now: int) -> bool:
    """Starting -> offered again: the start was refused before anything was made."""
    return _move(session, offer_id, "starting", "offered", now, acted_by="")


def started(session: Session, offer_id: str, run_id: str, now: int) -> bool:
    return _move(session, offer_id, "starting", "started", now, run_id=run_id)


def dismiss(session: Session, offer_id: str, user_id: str, now: int) -> bool:
    return _move(session, offer_id, "offered", "dismissed", now, acted_by=user_id)
