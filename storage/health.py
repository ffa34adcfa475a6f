"""The health check's probe of the database: one small write, so a full disk or a read-only file shows."""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.models import Heartbeat


def beat(session: Session, process_id: str, now: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Heartbeat).values(process_id=process_id, at=now)
                    .on_conflict_do_update(index_elements=["process_id"], set_={"at": now}))
