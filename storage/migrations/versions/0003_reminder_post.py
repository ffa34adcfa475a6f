"""reminders.post_ids: the reminder posts still showing buttons, so an update can take them away.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server_default: existing rows (and SQLite's ADD COLUMN ... NOT NULL) need a value.
    op.add_column("reminders", sa.Column("post_ids", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("post_ids")
