"""Playbook actions on run events as rows (storage.models.RunAction) and the links they make (RunLink).

handlers/actions.py writes a row per (run, action, event) before calling anything: `insert_actions`
skips the ones that exist (the unique key; a second process inserting the same row at the same moment
gets a conflict inside a savepoint and skips it too). Claiming is a compare-and-set on the lease the
claimer saw, as for run starts (storage/starts.py), so of two processes one carries each row; every
record after that is conditional on still holding the lease.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._sql import rowcount
from storage.models import Run, RunAction, RunLink, StatusUpdate, TimelineEvent
from storage.timeline import add_timeline

LIVE = ("pending", "running")
# The timeline events that are run events with actions after the start (which has its own rows first).
EVENT_TYPES = ("item_state_changed", "status_updated", "run_finished")


def insert_actions(session: Session, rows: list[RunAction]) -> list[str]:
    """Insert the rows not there yet (by run, action and event); the ids of those inserted."""
    added = []
    for row in rows:
        existing = session.exec(select(RunAction.id).where(
            RunAction.run_id == row.run_id, RunAction.action_index == row.action_index,
            RunAction.event_key == row.event_key)).first()
        if existing is not None:
            continue
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # another process inserted it a moment ago
            continue
        added.append(row.id)
    return added


def live_actions(session: Session) -> list[RunAction]:
    """Every row still to be carried out (pending, or running under a lease that may have run out)."""
    return list(session.exec(select(RunAction).where(col(RunAction.state).in_(LIVE))
                             .order_by(col(RunAction.created_at), col(RunAction.id))))


def claim(session: Session, action_id: str, seen_owner: str, seen_until: int, me: str, now: int,
          lease_ms: int) -> RunAction | None:
    """Take the row's lease if it is still as the claimer saw it (one more attempt); the row, or None if
    another got it. A row in flight keeps its updated_at: the time of the call (or of its failure) that
    may have acted, which the next attempt may need to wait on (handlers/actions.py, Jira's search)."""
    result = session.execute(
        update(RunAction).where(col(RunAction.id) == action_id, col(RunAction.state).in_(LIVE),
                                col(RunAction.lease_owner) == seen_owner, col(RunAction.lease_until) == seen_until)
        .values(lease_owner=me, lease_until=now + lease_ms, state="running",
                updated_at=case((col(RunAction.in_flight), RunAction.updated_at), else_=now),
                attempts=RunAction.attempts + 1)
        .execution_options(synchronize_session=False))
    if rowcount(result) != 1:
        return None
    row = session.get(RunAction, action_id)
    if row is not None:
        session.refresh(row)
    return row


def _mine(session: Session, action_id: str, me: str, values: dict[str, Any]) -> bool:
    result = session.execute(update(RunAction).where(col(RunAction.id) == action_id,
                                                     col(RunAction.lease_owner) == me,
                                                     col(RunAction.state).in_(LIVE))
                             .values(**values).execution_options(synchronize_session=False))
    return rowcount(result) == 1


def begin_call(session: Session, action_id: str, me: str, now: int, lease_ms: int) -> bool:
    """Just before a call that creates something: it is in flight until its answer is recorded."""
    return _mine(session, action_id, me, {"in_flight": True, "lease_until": now + lease_ms, "updated_at": now})


def retry_later(session: Session, action_id: str, me: str, now: int, due: int, error: str, hint: str,
                uncertain: bool) -> bool:
    """A failure worth another attempt at `due`: the lease is released for whoever comes then.
    `uncertain`: no answer came, so whether the call acted is unknown (in_flight stays set)."""
    return _mine(session, action_id, me, {"state": "pending", "lease_owner": "", "lease_until": 0,
                                          "next_attempt_at": due, "error": error[:2000], "hint": hint[:2000],
                                          "in_flight": uncertain, "updated_at": now})


def settle(session: Session, action_id: str, me: str, now: int, ok: bool, result: dict[str, Any],
           error: str, hint: str, timeline_summary: str, timeline_details: dict[str, Any],
           link: RunLink | None = None) -> bool:
    """The row's final outcome, its timeline event and its link, in one transaction; False (nothing
    written) when the caller no longer holds the lease."""
    if not _mine(session, action_id, me, {"state": "done" if ok else "failed", "result": result,
                                          "error": error[:2000], "hint": hint[:2000], "in_flight": False,
                                          "lease_owner": "", "lease_until": 0, "updated_at": now}):
        return False
    row = session.get(RunAction, action_id)
    assert row is not None
    add_timeline(session, row.run_id, "action_succeeded" if ok else "action_failed", now, "",
                 timeline_summary[:255], {**timeline_details, "kind": row.kind, "action": row.action_index})
    if link is not None:
        session.merge(link)
    return True


def run_actions(session: Session, run_id: str) -> list[RunAction]:
    return list(session.exec(select(RunAction).where(RunAction.run_id == run_id)
                             .order_by(col(RunAction.created_at), col(RunAction.id))))


def run_links(session: Session, run_id: str) -> list[RunLink]:
    return list(session.exec(select(RunLink).where(RunLink.run_id == run_id)
                             .order_by(col(RunLink.at), col(RunLink.action_id))))


def jira_issue(session: Session, run_id: str) -> RunLink | None:
    """The run's Jira issue (the first one an action created), or None."""
    return session.exec(select(RunLink).where(RunLink.run_id == run_id, RunLink.kind == "jira")
                        .order_by(col(RunLink.at), col(RunLink.action_id))).first()


def jira_issue_or_creating(session: Session, run_id: str,
                           before: RunAction | None = None) -> tuple[RunLink | None, bool]:
    """The run's Jira issue, else whether a jira.create_issue action of it is still live (pending or being
    retried); with `before`, only one ordered before that row (created_at, action_index, id) counts: of several
    create rows of a run (two actions, or one on item_checked for two items at once) the first creates
    and the others wait for it, then adopt its issue.

    The live rows are read first: a create that settles between the two reads wrote its link in the same
    transaction (`settle`), so the second read sees it. Read the other way round (on PostgreSQL, or SQLite
    outside a transaction, each statement sees what is committed when it starts) a comment could find
    neither the link nor a live create and fail for good, or a second create make a second issue."""
    live = select(RunAction.id).where(RunAction.run_id == run_id, RunAction.kind == "jira.create_issue",
                                      col(RunAction.state).in_(LIVE))
    if before is not None:
        live = live.where(tuple_(col(RunAction.created_at), col(RunAction.action_index), col(RunAction.id))
                          < tuple_(before.created_at, before.action_index, before.id))
    creating = session.exec(live).first() is not None
    link = jira_issue(session, run_id)
    return link, link is None and creating


@dataclass(frozen=True)
class RunEvent:
    """A run event as its timeline records it, for the actions' sweep (handlers/actions.py)."""

    run_id: str
    event: str  # item_checked | status_updated | run_finished
    key: str  # the event_key its action rows have
    actor_id: str
    payload: dict[str, Any]
    at: int


def runs_with_events(session: Session, since: int, until: int) -> list[tuple[str, str]]:
    """(run id, playbook version id) of the runs with a status update, an item state change or a finish
    on their timeline in [since, until): those whose version has actions on them may have one unrecorded."""
    found = session.exec(
        select(Run.id, Run.playbook_version_id).join(TimelineEvent, col(TimelineEvent.run_id) == Run.id)
        .where(col(TimelineEvent.type).in_(EVENT_TYPES), col(TimelineEvent.at) >= since,
               col(TimelineEvent.at) < until, col(Run.playbook_version_id).is_not(None)).distinct())
    return [(run_id, version_id) for run_id, version_id in found if version_id]


def unrecorded_events(session: Session, run_ids: list[str], since: int, until: int) -> list[RunEvent]:
    """The run events of `run_ids` in [since, until) with no action row yet: a process that died between
    the event's commit and writing its rows (or whose follow-up failed before it) left them so. Rows are
    by (run, event key), and one event's rows are written together, so one row means it was recorded."""
    if not run_ids:
        return []
    events = session.exec(select(TimelineEvent).where(
        col(TimelineEvent.run_id).in_(run_ids), col(TimelineEvent.type).in_(EVENT_TYPES),
        col(TimelineEvent.at) >= since, col(TimelineEvent.at) < until)
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))).all()
    recorded = set(session.exec(select(RunAction.run_id, RunAction.event_key)
                                .where(col(RunAction.run_id).in_(run_ids))).all())
    update_ids = [str((e.details or {}).get("status_update_id")) for e in events
                  if e.type == "status_updated" and (e.details or {}).get("status_update_id")]
    messages = dict(session.exec(select(StatusUpdate.id, StatusUpdate.message)
                                 .where(col(StatusUpdate.id).in_(update_ids))).all()) if update_ids else {}
    found: list[RunEvent] = []
    for e in events:
        details = e.details or {}
        if e.type == "item_state_changed":
            if details.get("to") != "closed" or not details.get("item_id"):
                continue
            item_id = str(details["item_id"])
            found.append(RunEvent(e.run_id, "item_checked", item_id[:64], e.actor_id,
                                  {"item_id": item_id, "title": str(details.get("title") or "")}, e.at))
        elif e.type == "status_updated":
            update_id = str(details.get("status_update_id") or "")
            if update_id not in messages:
                continue
            found.append(RunEvent(e.run_id, "status_updated", update_id[:64], e.actor_id,
                                  {"message": messages[update_id], "reminder_s": int(details.get("reminder_s") or 0),
                                   "update_id": update_id}, e.at))
        else:
            found.append(RunEvent(e.run_id, "run_finished", f"finish:{e.at}", e.actor_id, {}, e.at))
    seen: set[tuple[str, str]] = set()
    unrecorded = []
    for ev in found:  # an item checked twice is one event (its key), as when it happened
        if (ev.run_id, ev.key) in recorded or (ev.run_id, ev.key) in seen:
            continue
        seen.add((ev.run_id, ev.key))
        unrecorded.append(ev)
    return unrecorded
