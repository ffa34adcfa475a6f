"""Timeline events people add by hand (`/playbook timeline add`): an existing post on a run's timeline."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from storage.models import TimelineEvent
from storage.queries import add_timeline

FROM_POST = "event_from_post"


def add_post_event(session: Session, run_id: str, post_id: str, at: int, actor_id: str, summary: str,
                   details: dict[str, Any]) -> TimelineEvent | None:
    """Put the post on the run's timeline; None when it is there already (adding it twice says nothing new)."""
    for existing in session.exec(select(TimelineEvent.details).where(TimelineEvent.run_id == run_id,
                                                                     TimelineEvent.type == FROM_POST)):
        if (existing or {}).get("post_id") == post_id:
            return None
    return add_timeline(session, run_id, FROM_POST, at, actor_id, summary, {**details, "post_id": post_id})
