"""Scheduled runs: `schedule_occurrences`, one row per occurrence of a playbook's [schedule] that was
started or skipped. Its primary key (playbook_id, occurrence_at) is what makes an occurrence start once
across restarts and bot processes.

Revision ID: 0030
Revises: 0029
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_occurrences",
        sa.Column("playbook_id", sa.String(128), nullable=False),
        sa.Column("occurrence_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=False, server_default=""),
        sa.Column("reason", sa.String(), nullable=False, server_default=""),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("playbook_id", "occurrence_at"),
    )
    op.create_index("ix_schedule_occurrences_recorded_at", "schedule_occurrences", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_occurrences_recorded_at", table_name="schedule_occurrences")
    op.drop_table("schedule_occurrences")
