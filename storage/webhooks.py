"""The outcome of each outgoing webhook URL's last delivery (`python -m bot check` lists the failing ones)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from storage.db import make_engine, normalize_url, session_scope, sqlite_in_memory
from storage.models import WebhookStatus


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


class StorageUnavailable(Exception):
    """The database at the configured URL cannot be opened."""


def read_failing_webhooks(url: str) -> list[WebhookStatus]:
    """For `python -m bot check`, outside a running bot: the failing URLs in the database at `url`
    (none when it is not migrated yet: nothing was delivered). A SQLite file that does not exist yet
    is not created: a check writes nothing."""
    try:
        parsed = normalize_url(url)
    except (SQLAlchemyError, ValueError) as err:
        raise StorageUnavailable(str(err)) from err
    if parsed.get_backend_name() == "sqlite" and not sqlite_in_memory(parsed):
        database = parsed.database or ""
        if not database.startswith("file:") and not Path(database).expanduser().is_file():
            return []
    try:
        engine = make_engine(url, pool_size=1)
    except (SQLAlchemyError, OSError) as err:
        raise StorageUnavailable(str(err)) from err
    try:
        with session_scope(engine, readonly=True) as session:
            return failing_webhooks(session)
    except SQLAlchemyError:
        return []  # not migrated yet: no deliveries to report
    finally:
        engine.dispose()
