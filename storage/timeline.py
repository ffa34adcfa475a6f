"""A run's timeline: every change records an event (contracts.md types) in the transaction that makes
it; people add existing posts by hand (`/playbook timeline add`).
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from storage.ids import new_id
from storage.models import TimelineEvent


def add_timeline(session: Session, run_id: str, type: str, at: int, actor_id: str = "",
                 summary: str = "", details: dict[str, Any] | None = None) -> TimelineEvent:
    event = TimelineEvent(id=new_id(), run_id=run_id, type=type, at=at, actor_id=actor_id,
                          summary=summary, details=details or {})
    # No flush: the id is made here, and the unit of work writes the pending events together (one
    # executemany) at the next query or at commit, which is what keeps a batch of clicks cheap.
    session.add(event)
    return event


def timeline(session: Session, run_id: str) -> list[TimelineEvent]:
    return list(session.exec(select(TimelineEvent).where(TimelineEvent.run_id == run_id)
                             .order_by(col(TimelineEvent.at), col(TimelineEvent.id))))


FROM_POST = "event_from_post"


def add_post_event(session: Session, run_id: str, post_id: str, at: int, actor_id: str, summary: str,
                   details: dict[str, Any]) -> TimelineEvent | None:
    """Put the post on the run's timeline; None when it is there already (adding it twice says nothing new)."""
    for existing in session.exec(select(TimelineEvent.details).where(TimelineEvent.run_id == run_id,
                                                                     TimelineEvent.type == FROM_POST)):
        if (existing or {}).get("post_id") == post_id:
            return None
    return add_timeline(session, run_id, FROM_POST, at, actor_id, summary, {**details, "post_id": post_id})


def note_post(session: Session, run_id: str, type_: str, at: int, post_id: str) -> None:
    """Remember the post on the timeline event it announced (the latest of its type at `at`)."""
    for event in reversed(timeline(session, run_id)):
        if event.type == type_ and event.at == at:
            event.details = {**event.details, "post_id": post_id}
            session.add(event)
            return


RETRO_EVENTS = ("retrospective_published", "retrospective_updated")


def last_post(session: Session, run_id: str, types: tuple[str, ...]) -> str:
    """The post noted on the latest event of one of `types` (note_post), or ""."""
    for event in reversed(timeline(session, run_id)):
        if event.type in types and event.details.get("post_id"):
            return str(event.details["post_id"])
    return ""


UPDATE_REQUESTED = "update_requested"


def request_update(session: Session, run_id: str, actor_id: str, now: int, every_ms: int) -> int | None:
    """Record a request for a status update and return None; when one was made within `every_ms`,
    write nothing and return that request's time."""
    last = session.exec(select(TimelineEvent).where(TimelineEvent.run_id == run_id,
                                                    TimelineEvent.type == UPDATE_REQUESTED)
                        .order_by(col(TimelineEvent.at).desc()).limit(1)).first()
    if last is not None and now - last.at < every_ms:
        return last.at
    add_timeline(session, run_id, UPDATE_REQUESTED, now, actor_id, "Status update requested")
    return None
