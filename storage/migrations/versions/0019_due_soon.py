"""Due soon: checklist_items.due_soon_noticed_at claims the heads-up an assignee gets shortly before an
item of theirs falls due (handlers/due.py), once across rounds and processes.

Revision ID: 0019
Revises: 0016
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checklist_items") as batch:
        batch.add_column(sa.Column("due_soon_noticed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checklist_items") as batch:
        batch.drop_column("due_soon_noticed_at")
