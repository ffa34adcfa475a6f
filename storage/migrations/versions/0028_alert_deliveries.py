"""Alerts start runs: alert_deliveries (each delivery taken in, unique per source and repeat key, and the
outbox of its channel post) and alert_groups (the run an alert group started, unique while open).

Revision ID: 0028
Revises: 0027
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("dedup", sa.String(length=64), nullable=False),
        sa.Column("group_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("playbook_id", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("finish", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("post_state", sa.String(length=16), nullable=False),
        sa.Column("post_holder", sa.String(length=64), nullable=False),
        sa.Column("post_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "dedup", name="uq_alert_deliveries_source_dedup"),
    )
    op.create_index("ix_alert_deliveries_post_state", "alert_deliveries", ["post_state"])
    op.create_index("ix_alert_deliveries_received_at", "alert_deliveries", ["received_at"])
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("group_hash", sa.String(length=64), nullable=False),
        sa.Column("open_hash", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "open_hash", name="uq_alert_groups_source_open"),
    )
    op.create_index("ix_alert_groups_run", "alert_groups", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_groups_run", table_name="alert_groups")
    op.drop_table("alert_groups")
    op.drop_index("ix_alert_deliveries_received_at", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_post_state", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
