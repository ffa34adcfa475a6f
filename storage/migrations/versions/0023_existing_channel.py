"""Runs in an existing channel: runs.existing_channel and run_starts.existing_channel say the run was
started in a channel it did not create (the playbook's channel_mode = "existing"). Such a channel is
never archived by the bot (not on a failed start, not on finish), never filed in a sidebar category, and
may be shared by several runs.

Revision ID: 0023
Revises: 0022
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("existing_channel", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("run_starts") as batch:
        batch.add_column(sa.Column("existing_channel", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("run_starts") as batch:
        batch.drop_column("existing_channel")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("existing_channel")
