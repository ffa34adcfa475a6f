"""The initial tables: runs with their checklists, items, people, timeline, status updates, reminders.

Revision ID: 0001
Revises:
Created: 2026-11-27

Written from `alembic revision --autogenerate` against storage/models.py, then tidied by hand.
tests/unit/test_storage.py checks that the migrated schema still matches the models exactly.
Times are BIGINT milliseconds since the epoch (UTC); ids are 26-character Mattermost-style strings.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str = "id") -> sa.Column:
    return sa.Column(name, sa.String(26), nullable=False)


def _run_id() -> sa.Column:
    return sa.Column("run_id", sa.String(26), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=False)


def _int(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def _millis(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        _id(),
        _int("seq"),
        sa.Column("name", sa.String(1024), nullable=False),
        _text("summary"),
        sa.Column("playbook_id", sa.String(128), nullable=False),
        _text("playbook_title"),
        _id("team_id"),
        _id("channel_id"),
        sa.Column("private", sa.Boolean(), nullable=False),
        _id("owner_id"),
        _id("creator_id"),
        sa.Column("status", sa.String(16), nullable=False),
        _millis("created_at"),
        _millis("finished_at", nullable=True),
        _text("overview_post_id"),
        sa.Column("broadcast_threads", sa.JSON(), nullable=False),
        sa.Column("status_updates_enabled", sa.Boolean(), nullable=False),
        _int("reminder_interval_s"),
        sa.Column("retrospective_enabled", sa.Boolean(), nullable=False),
        _text("retrospective_text"),
        _text("retrospective_status"),
        _int("retrospective_reminder_s"),
        sa.Column("participants_may_finish", sa.Boolean(), nullable=False),
        _int("version"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_team_status", "runs", ["team_id", "status"])
    op.create_index("ix_runs_channel", "runs", ["channel_id"])

    op.create_table(
        "checklists",
        _id(),
        _run_id(),
        _int("position"),
        _text("title"),
        _text("post_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "position"),
    )
    op.create_index("ix_checklists_run_id", "checklists", ["run_id"])

    op.create_table(
        "checklist_items",
        _id(),
        _run_id(),
        sa.Column("checklist_id", sa.String(26), sa.ForeignKey("checklists.id", ondelete="CASCADE"),
                  nullable=False),
        _int("position"),
        _text("title"),
        _text("description"),
        sa.Column("state", sa.String(16), nullable=False),
        _id("assignee_id"),
        _millis("due_at", nullable=True),
        _text("command"),
        _millis("updated_at"),
        _text("updated_by"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_checklist_items_run_id", "checklist_items", ["run_id"])
    op.create_index("ix_items_checklist_position", "checklist_items", ["checklist_id", "position"])
    op.create_index("ix_items_assignee_state", "checklist_items", ["assignee_id", "state"])

    op.create_table(
        "participants",
        _run_id(),
        _id("user_id"),
        _millis("joined_at"),
        sa.PrimaryKeyConstraint("run_id", "user_id"),
    )

    op.create_table(
        "followers",
        _run_id(),
        _id("user_id"),
        sa.PrimaryKeyConstraint("run_id", "user_id"),
    )

    op.create_table(
        "timeline_events",
        _id(),
        _run_id(),
        sa.Column("type", sa.String(64), nullable=False),
        _millis("at"),
        _text("actor_id"),
        _text("summary"),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_timeline_run_at", "timeline_events", ["run_id", "at"])

    op.create_table(
        "status_updates",
        _id(),
        _run_id(),
        _millis("at"),
        _text("author_id"),
        _text("message"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_status_updates_run_at", "status_updates", ["run_id", "at"])

    op.create_table(
        "reminders",
        _id(),
        _run_id(),
        sa.Column("kind", sa.String(32), nullable=False),
        _millis("due_at", nullable=True),
        _int("interval_s"),
        _millis("last_sent_at", nullable=True),
        _int("sent_count"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "kind"),
    )
    op.create_index("ix_reminders_due", "reminders", ["due_at"])

    op.create_table(
        "run_counters",
        _id("team_id"),
        sa.Column("playbook_id", sa.String(128), nullable=False),
        _int("value"),
        sa.PrimaryKeyConstraint("team_id", "playbook_id"),
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in ("run_counters", "reminders", "status_updates", "timeline_events", "followers",
                  "participants", "checklist_items", "checklists", "runs"):
        op.drop_table(table)
