"""The outcome of each outgoing webhook URL's last delivery (`python -m bot check` lists the failing ones)."""
from __future__ import annotations

from sqlmodel import Session, select

from storage.db import read_existing
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


def read_failing_webhooks(url: str) -> list[WebhookStatus]:
    """For `python -m bot check`: the failing URLs in the database at `url` (none when it is not there or
    not migrated yet: nothing was delivered). Writes nothing."""
    return read_existing(url, failing_webhooks, [])
