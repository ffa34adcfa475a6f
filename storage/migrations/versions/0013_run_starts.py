"""run_starts: a run start as a recorded sequence (the plan, each step's result, the lease of the process
carrying it out), so a start cut halfway by a crash or a failing Mattermost is resumed or rolled back.

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_starts",
        sa.Column("run_id", sa.String(26), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("playbook_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("creator_id", sa.String(26), nullable=False),
        sa.Column("team_id", sa.String(26), nullable=False),
        sa.Column("origin_channel_id", sa.String(26), nullable=False),
        sa.Column("response_url", sa.String(), nullable=False),
        sa.Column("prepared", sa.Boolean(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("channel_name", sa.String(64), nullable=False),
        sa.Column("names_tried", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(26), nullable=False),
        sa.Column("owner_added", sa.Boolean(), nullable=False),
        sa.Column("members_wanted", sa.JSON(), nullable=False),
        sa.Column("members_added", sa.JSON(), nullable=False),
        sa.Column("members_done", sa.Boolean(), nullable=False),
        sa.Column("admin_done", sa.Boolean(), nullable=False),
        sa.Column("filed", sa.Boolean(), nullable=False),
        sa.Column("posts", sa.JSON(), nullable=False),
        sa.Column("broadcasts_done", sa.Boolean(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("told", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_run_starts_state", "run_starts", ["state"])


def downgrade() -> None:
    op.drop_index("ix_run_starts_state", table_name="run_starts")
    op.drop_table("run_starts")
