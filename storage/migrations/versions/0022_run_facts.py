"""run_facts: each run's timeline folded for the insights page (storage/run_facts.py keeps it current),
built here from the timelines already stored; and the indexes the web pages' queries want:
participants(user_id) (non-admin visibility), timeline_events(type, run_id) (one type's events across
runs), checklist_items(state, run_id, title) (skipped items).

The fold below is a frozen copy of storage/run_facts.py fold as of this revision (a migration must not
change when the code does); tests/unit/test_run_facts.py holds the two equal.

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTION_TYPES = ("item_state_changed", "status_updated", "assignee_changed", "command_ran")
FOLDED_TYPES = sorted(("run_started", "run_finished", "retrospective_published", "retrospective_cancelled",
                       "reminder_sent", *ACTION_TYPES))
CHUNK = 500

runs = sa.table("runs", sa.column("id", sa.String))
events = sa.table("timeline_events", sa.column("id", sa.String), sa.column("run_id", sa.String),
                  sa.column("type", sa.String), sa.column("at", sa.BigInteger), sa.column("actor_id", sa.String))


def _at_if(condition: Any) -> Any:
    return sa.case((condition, events.c.at), else_=None)


def _count_if(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _fold(connection: sa.engine.Connection, ids: list[str]) -> list[dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {
        run_id: dict(run_id=run_id, started_at=None, finished_at=None, first_update_at=None, last_update_at=None,
                     first_action_at=None, first_action_by="", other_action_at=None, retro_published_at=None,
                     retro_cancelled=0, reminders_sent=0, update_gaps=[]) for run_id in ids}
    ev, kind = events.c, events.c.type
    for row in connection.execute(
            sa.select(ev.run_id, sa.func.min(_at_if(kind == "run_started")), sa.func.max(_at_if(kind == "run_finished")),
                      sa.func.min(_at_if(kind == "status_updated")), sa.func.max(_at_if(kind == "status_updated")),
                      sa.func.min(_at_if(kind == "retrospective_published")),
                      _count_if(kind == "retrospective_cancelled"), _count_if(kind == "reminder_sent"))
            .where(ev.run_id.in_(ids), kind.in_(FOLDED_TYPES)).group_by(ev.run_id)):
        facts[row[0]].update(started_at=row[1], finished_at=row[2], first_update_at=row[3], last_update_at=row[4],
                             retro_published_at=row[5], retro_cancelled=int(row[6] or 0),
                             reminders_sent=int(row[7] or 0))
    firsts: dict[str, list[tuple[int, str]]] = {}
    for run_id, actor, at in connection.execute(
            sa.select(ev.run_id, ev.actor_id, sa.func.min(ev.at))
            .where(ev.run_id.in_(ids), kind.in_(ACTION_TYPES), ev.actor_id != "").group_by(ev.run_id, ev.actor_id)):
        firsts.setdefault(run_id, []).append((int(at), actor))
    for run_id, actions in firsts.items():
        actions.sort()
        at, by = actions[0]
        others = [a for a, actor in actions if actor != by]
        facts[run_id].update(first_action_at=at, first_action_by=by, other_action_at=others[0] if others else None)
    previous: dict[str, int] = {}
    for run_id, type_, at in connection.execute(
            sa.select(ev.run_id, ev.type, ev.at).where(ev.run_id.in_(ids), kind.in_(("run_started", "status_updated")))
            .order_by(ev.run_id, ev.at, ev.id)):
        if type_ == "status_updated" and run_id in previous:
            facts[run_id]["update_gaps"].append(int(at) - previous[run_id])
        previous[run_id] = int(at)
    return list(facts.values())


def upgrade() -> None:
    op.create_index("ix_participants_user", "participants", ["user_id"])
    op.create_index("ix_timeline_type_run", "timeline_events", ["type", "run_id"])
    op.create_index("ix_items_state_run_title", "checklist_items", ["state", "run_id", "title"])
    table = op.create_table(
        "run_facts",
        sa.Column("run_id", sa.String(26), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("first_update_at", sa.BigInteger(), nullable=True),
        sa.Column("last_update_at", sa.BigInteger(), nullable=True),
        sa.Column("first_action_at", sa.BigInteger(), nullable=True),
        sa.Column("first_action_by", sa.String(64), nullable=False),
        sa.Column("other_action_at", sa.BigInteger(), nullable=True),
        sa.Column("retro_published_at", sa.BigInteger(), nullable=True),
        sa.Column("retro_cancelled", sa.Integer(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("update_gaps", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    connection = op.get_bind()
    ids = [row[0] for row in connection.execute(sa.select(runs.c.id).order_by(runs.c.id))]
    for start in range(0, len(ids), CHUNK):
        rows = _fold(connection, ids[start:start + CHUNK])
        if rows:
            connection.execute(table.insert(), rows)


def downgrade() -> None:
    op.drop_table("run_facts")
    op.drop_index("ix_items_state_run_title", table_name="checklist_items")
    op.drop_index("ix_timeline_type_run", table_name="timeline_events")
    op.drop_index("ix_participants_user", table_name="participants")
