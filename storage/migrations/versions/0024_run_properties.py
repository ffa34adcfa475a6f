"""Run properties, conditional items and items that check themselves (issue 14).

runs.property_defs / runs.properties: the playbook's [[properties]] as the run started with them, and
the run's values. run_starts.properties: the values asked for at start. checklist_items.condition,
.hidden: an item's `when` and its verdict on the run's properties (hidden items are kept, not deleted,
so they come back when a property changes). checklist_items.auto_check, .auto_checked_at: the keywords
that check an item, and when they did (once per item).

Revision ID: 0024
Revises: 0023
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("property_defs", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("properties", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("run_starts") as batch:
        batch.add_column(sa.Column("properties", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("checklist_items") as batch:
        batch.add_column(sa.Column("condition", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("auto_check", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("auto_checked_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checklist_items") as batch:
        batch.drop_column("auto_checked_at")
        batch.drop_column("auto_check")
        batch.drop_column("hidden")
        batch.drop_column("condition")
    with op.batch_alter_table("run_starts") as batch:
        batch.drop_column("properties")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("properties")
        batch.drop_column("property_defs")
