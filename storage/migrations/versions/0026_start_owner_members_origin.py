"""Starts that name their owner, extra members and what started them: run_starts.owner_id, member_ids and
origin, so a run started by the API, an alert route or a schedule is carried out as asked by whichever
process resumes it.

Revision ID: 0026
Revises: 0025
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_starts") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(length=26), nullable=False, server_default=""))
        batch.add_column(sa.Column("member_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("origin", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("run_starts") as batch:
        batch.drop_column("origin")
        batch.drop_column("member_ids")
        batch.drop_column("owner_id")
