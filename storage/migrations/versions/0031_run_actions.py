"""Actions on run events: run_actions (one row per playbook action per event, written before any call to
a tool outside Mattermost, unique per run, action and event) and run_links (the Jira issue, the Zoom
meeting an action made for a run).

Revision ID: 0031
Revises: 0030
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_actions",
        sa.Column("id", sa.String(length=26), primary_key=True),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=False),
        sa.Column("in_flight", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.String(length=26), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("hint", sa.String(), nullable=False),
        sa.UniqueConstraint("run_id", "action_index", "event_key"),
    )
    op.create_index("ix_run_actions_run_id", "run_actions", ["run_id"])
    op.create_index("ix_run_actions_state", "run_actions", ["state", "next_attempt_at"])
    op.create_table(
        "run_links",
        sa.Column("action_id", sa.String(length=26), primary_key=True),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_run_links_run_id", "run_links", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_links_run_id", table_name="run_links")
    op.drop_table("run_links")
    op.drop_index("ix_run_actions_state", table_name="run_actions")
    op.drop_index("ix_run_actions_run_id", table_name="run_actions")
    op.drop_table("run_actions")
