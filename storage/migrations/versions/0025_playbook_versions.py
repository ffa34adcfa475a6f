"""Playbooks live in the database, with versions: `playbooks` (the current version and state of each) and
`playbook_versions` (immutable saves); runs and run starts record the version they started from.

Runs started before this migration keep playbook_version_id NULL and read the playbook's current version.

Revision ID: 0025
Revises: 0024
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "playbooks",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("current_version_id", sa.String(26), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("file_managed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("path", sa.String(), nullable=False, server_default=""),
        sa.Column("error", sa.String(), nullable=False, server_default=""),
        sa.Column("missing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_playbooks_updated_at", "playbooks", ["updated_at"])
    op.create_table(
        "playbook_versions",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("playbook_id", sa.String(128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_path", sa.String(), nullable=False, server_default=""),
        sa.Column("source_commit", sa.String(64), nullable=False, server_default=""),
        sa.Column("author_id", sa.String(26), nullable=False, server_default=""),
        sa.Column("note", sa.String(), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["playbook_id"], ["playbooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("playbook_id", "number"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("playbook_version_id", sa.String(26), nullable=True))
    with op.batch_alter_table("run_starts") as batch:
        batch.add_column(sa.Column("playbook_version_id", sa.String(26), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_starts") as batch:
        batch.drop_column("playbook_version_id")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("playbook_version_id")
    op.drop_table("playbook_versions")
    op.drop_index("ix_playbooks_updated_at", "playbooks")
    op.drop_table("playbooks")
