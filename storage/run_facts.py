"""run_facts: each run's timeline folded (first start, last finish, updates, first action, retrospective,
reminders, the gaps between updates), so the insights page reads one row per run instead of every event.

Kept in step by a flush hook on every Session: whenever timeline events of the folded types are written
(storage/timeline.py add_timeline, storage/reminders.py record_sent, or any other `session.add`), the
affected runs' rows are recomputed from their own events (through ix_timeline_run_at) in the same
transaction, after the events are inserted. Recomputing rather than adding up keeps the row exact whatever
order events arrive in. Two processes writing to one run: the row is locked first (an upsert), so on
PostgreSQL the second waits for the first to commit and then folds the first one's events too; on SQLite
writers are serialised anyway (BEGIN IMMEDIATE, storage/db.py).

Rows written around the ORM (bulk inserts into timeline_events) are not seen: call `refresh_all` after such
a load (bench/web_pages.py does); migration 0022 built the rows for the runs before it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, UOWTransaction

from storage.models import Run, RunFacts, TimelineEvent

# What counts as acting on a run (time to first action) when the actor is a person, not the bot.
ACTION_TYPES = ("item_state_changed", "status_updated", "assignee_changed", "command_ran")
STEP_TYPES = ("run_started", "status_updated")  # the gaps between updates start at the run's start
FOLDED_TYPES = frozenset(("run_started", "run_finished", "retrospective_published", "retrospective_cancelled",
                          "reminder_sent", *ACTION_TYPES))
_CHUNK = 500

_ev = TimelineEvent.__table__.c  # type: ignore[attr-defined]
_facts = RunFacts.__table__  # type: ignore[attr-defined]


def first_action(first_at: int | None, first_by: str, other_at: int | None, bot_id: str) -> int | None:
    """The first action by a person: the first action unless the bot took it, else the first by anyone else."""
    return first_at if first_by != bot_id else other_at


def _at_if(condition: Any) -> Any:
    return case((condition, _ev.at), else_=None)


def _count_if(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def fold(connection: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """run id -> run_facts values computed from the run's timeline (three grouped queries per chunk)."""
    facts: dict[str, dict[str, Any]] = {}
    for start in range(0, len(run_ids), _CHUNK):
        ids = run_ids[start:start + _CHUNK]
        for run_id in ids:
            facts[run_id] = dict(run_id=run_id, started_at=None, finished_at=None, first_update_at=None,
                                 last_update_at=None, first_action_at=None, first_action_by="",
                                 other_action_at=None, retro_published_at=None, retro_cancelled=0,
                                 reminders_sent=0, update_gaps=[])
        kind = _ev.type
        for row in connection.execute(
                select(_ev.run_id, func.min(_at_if(kind == "run_started")), func.max(_at_if(kind == "run_finished")),
                       func.min(_at_if(kind == "status_updated")), func.max(_at_if(kind == "status_updated")),
                       func.min(_at_if(kind == "retrospective_published")),
                       _count_if(kind == "retrospective_cancelled"), _count_if(kind == "reminder_sent"))
                .where(_ev.run_id.in_(ids), kind.in_(sorted(FOLDED_TYPES))).group_by(_ev.run_id)):
            facts[row[0]].update(started_at=row[1], finished_at=row[2], first_update_at=row[3],
                                 last_update_at=row[4], retro_published_at=row[5], retro_cancelled=int(row[6] or 0),
                                 reminders_sent=int(row[7] or 0))
        # Each actor's first action; the first of all, and the first by anyone but its actor.
        firsts: dict[str, list[tuple[int, str]]] = {}
        for run_id, actor, at in connection.execute(
                select(_ev.run_id, _ev.actor_id, func.min(_ev.at))
                .where(_ev.run_id.in_(ids), kind.in_(ACTION_TYPES), _ev.actor_id != "")
                .group_by(_ev.run_id, _ev.actor_id)):
            firsts.setdefault(run_id, []).append((int(at), actor))
        for run_id, actions in firsts.items():
            actions.sort()
            at, by = actions[0]
            others = [a for a, actor in actions if actor != by]
            facts[run_id].update(first_action_at=at, first_action_by=by, other_action_at=others[0] if others else None)
        # The steps (start and updates) in timeline order: each update's distance from the step before.
        previous: dict[str, int] = {}
        for run_id, type_, at in connection.execute(
                select(_ev.run_id, _ev.type, _ev.at).where(_ev.run_id.in_(ids), kind.in_(STEP_TYPES))
                .order_by(_ev.run_id, _ev.at, _ev.id)):
            if type_ == "status_updated" and run_id in previous:
                facts[run_id]["update_gaps"].append(int(at) - previous[run_id])
            previous[run_id] = int(at)
    return facts


def refresh(connection: Connection, run_ids: Iterable[str]) -> None:
    """Recompute the run_facts rows of `run_ids` from their timelines (creating missing rows)."""
    ids = sorted(set(run_ids))
    if not ids:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        # Create or lock the rows first, so a concurrent writer of the same run waits here and then
        # folds this transaction's events too.
        statement = insert(_facts).values([{"run_id": run_id, "update_gaps": []} for run_id in chunk])
        connection.execute(statement.on_conflict_do_update(index_elements=["run_id"],
                                                           set_={"run_id": statement.excluded.run_id}))
        values = list(fold(connection, chunk).values())
        columns = [c for c in values[0] if c != "run_id"]
        connection.execute(update(_facts).where(_facts.c.run_id == bindparam("key"))
                           .values({c: bindparam(c) for c in columns}),
                           [{**{c: v[c] for c in columns}, "key": v["run_id"]} for v in values])


def refresh_all(connection: Connection) -> None:
    """Rebuild every run's row (after timeline events were written around the ORM)."""
    refresh(connection, [row[0] for row in connection.execute(select(Run.__table__.c.id))])  # type: ignore[attr-defined]


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    runs = {obj.run_id for obj in session.new if isinstance(obj, TimelineEvent) and obj.type in FOLDED_TYPES}
    if runs:
        refresh(session.connection(), runs)


event.listen(Session, "after_flush", _after_flush)
