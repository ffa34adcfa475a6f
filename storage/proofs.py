"""One-time proofs (trigger ids, dialog states): spending one is an INSERT that only the first caller wins.

Each helper takes a Session and runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from storage.models import UsedProof


def spend(session: Session, proofs: list[tuple[str, str, int]], forget_before: int) -> list[bool]:
    """For each (id, kind, made at ms): True when this call spent it, False when it was spent before
    (by anyone, in any process, or earlier in the same list). Forgets proofs made before `forget_before`,
    which can no longer be accepted anyway."""
    session.execute(delete(UsedProof).where(col(UsedProof.at) < forget_before))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    won = []
    for proof_id, kind, at in proofs:
        # INSERT ... ON CONFLICT DO NOTHING: of two processes spending the same proof, one inserts.
        # RETURNING says whether the row went in (psycopg reports no row count for this statement).
        inserted = session.execute(insert(UsedProof).values(id=proof_id, kind=kind, at=at)
                                   .on_conflict_do_nothing(index_elements=["id"]).returning(col(UsedProof.id)))
        won.append(inserted.first() is not None)
    return won


def unspend(session: Session, proof_id: str) -> None:
    session.execute(delete(UsedProof).where(col(UsedProof.id) == proof_id))
