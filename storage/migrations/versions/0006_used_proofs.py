"""used_proofs: trigger ids and dialog states already accepted, so a replay is refused by every process.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_proofs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_used_proofs_at", "used_proofs", ["at"])


def downgrade() -> None:
    op.drop_index("ix_used_proofs_at", table_name="used_proofs")
    op.drop_table("used_proofs")
