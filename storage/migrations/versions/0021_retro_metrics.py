"""Retrospective metrics: runs.metric_defs keeps the playbook's [[metrics]] as the run started with them;
run_metrics holds the values published with the retrospective.

Revision ID: 0021
Revises: 0020
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("metric_defs", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.String(26), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("run_metrics")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("metric_defs")
