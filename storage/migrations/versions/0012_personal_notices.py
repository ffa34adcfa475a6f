"""Personal notices: user_settings says whether a person gets a direct message when an item is assigned to
them, when they are made a run's owner and when an item of theirs falls due (all on unless turned off
with `/playbook settings`); checklist_items.due_noticed_at claims the one notice at an item's due time.

Revision ID: 0012
Revises: 0007
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_settings") as batch:
        batch.add_column(sa.Column("notify_assigned", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("notify_owner", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("notify_due", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("checklist_items") as batch:
        batch.add_column(sa.Column("due_noticed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checklist_items") as batch:
        batch.drop_column("due_noticed_at")
    with op.batch_alter_table("user_settings") as batch:
        batch.drop_column("notify_due")
        batch.drop_column("notify_owner")
        batch.drop_column("notify_assigned")
