"""Archive on finish: runs.archive_on_finish keeps the playbook's archive_channel_on_finish as the run
started with it; runs.channel_archived says the bot archived the channel (so a restore brings it back).

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("archive_on_finish", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("channel_archived", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("channel_archived")
        batch.drop_column("archive_on_finish")
