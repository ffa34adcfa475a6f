"""Post sweeps: runs.sweep_holder and runs.sweep_until claim the comparison of a run's posts with its rows
(handlers/reconcile.py) for one bot process at a time, so two processes never post a lost post twice.

Revision ID: 0015
Revises: 0013
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("sweep_holder", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("sweep_until", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("sweep_until")
        batch.drop_column("sweep_holder")
