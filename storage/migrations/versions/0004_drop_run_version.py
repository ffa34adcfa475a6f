"""runs.version: dropped. It was bumped on every change but never read: the overview and checklist
posts are rendered from the rows, and concurrent edits are ordered per post (bot/server.py), so a
counter guarded nothing and cost an UPDATE of the run's row on every change.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("version")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
