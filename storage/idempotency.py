"""Idempotency keys of the HTTP API (handlers/idempotency.py): claiming a key is an INSERT that only the
first caller wins, in any bot process; the answer is written to the same row once it is known.

Each helper takes a Session and runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage.models import IdempotencyKey

Outcome = Literal["new", "in_flight", "mismatch", "answered"]


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    status: int = 0  # the stored answer's, when "answered"
    answer: dict[str, Any] | None = None


def _slot(caller_id: str, route: str, key: str) -> Any:
    return (col(IdempotencyKey.caller_id) == caller_id) & (col(IdempotencyKey.route) == route) \
        & (col(IdempotencyKey.key) == key)


def claim(session: Session, caller_id: str, route: str, key: str, body_hash: str, now: int,
          forget_before: int, stale_before: int) -> Claim:
    """Claim `key` for this request: "new" when this call may carry it out (the row is now ours);
    "answered" with the first answer when the same request was answered; "mismatch" when the key was used
    with another body; "in_flight" while the first is still being answered. A row made before
    `forget_before` is forgotten (a new request); one still in flight since before `stale_before` was left
    by a process that died, and is taken over."""
    session.execute(delete(IdempotencyKey).where(_slot(caller_id, route, key),
                                                 col(IdempotencyKey.created_at) < forget_before))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # INSERT ... ON CONFLICT DO NOTHING: of two processes given the same key, one inserts.
    inserted = session.execute(insert(IdempotencyKey).values(
        caller_id=caller_id, route=route, key=key, body_hash=body_hash, created_at=now, status=0, answer=None)
        .on_conflict_do_nothing(index_elements=["caller_id", "route", "key"]).returning(col(IdempotencyKey.key)))
    if inserted.first() is not None:
        return Claim("new")
    row = session.exec(select(IdempotencyKey).where(_slot(caller_id, route, key))).first()
    if row is None:  # deleted between the two statements (the purge): the next try inserts
        return Claim("in_flight")
    if row.body_hash != body_hash:
        return Claim("mismatch")
    if row.status:
        return Claim("answered", row.status, row.answer)
    if row.created_at < stale_before:
        taken = session.execute(update(IdempotencyKey).where(
            _slot(caller_id, route, key), col(IdempotencyKey.status) == 0,
            col(IdempotencyKey.created_at) == row.created_at).values(created_at=now)
            .execution_options(synchronize_session=False))
        if getattr(taken, "rowcount", 0) == 1:
            return Claim("new")
    return Claim("in_flight")


def answer(session: Session, caller_id: str, route: str, key: str, status: int, body: dict[str, Any]) -> None:
    """Keep the answer given to the request that claimed `key`, for its repeats."""
    session.execute(update(IdempotencyKey).where(_slot(caller_id, route, key))
                    .values(status=status, answer=body).execution_options(synchronize_session=False))


def release(session: Session, caller_id: str, route: str, key: str) -> None:
    """Forget a claim whose request failed without an answer worth repeating (5xx): a retry runs again."""
    session.execute(delete(IdempotencyKey).where(_slot(caller_id, route, key), col(IdempotencyKey.status) == 0))


def purge(session: Session, before: int) -> int:
    """Delete the keys made before `before`; how many."""
    result = session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < before))
    return int(getattr(result, "rowcount", 0) or 0)


def count(session: Session) -> int:
    return len(list(session.exec(select(IdempotencyKey.key)).all()))
