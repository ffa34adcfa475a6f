"""An index on timeline_events (type, at): the actions' sweep (handlers/actions.py) reads the item checks,
status updates and finishes of the last day across all runs every few minutes, which without it scans
every event of those types ever stored.

Revision ID: 0032
Revises: 0031
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_timeline_type_at", "timeline_events", ["type", "at"])


def downgrade() -> None:
    op.drop_index("ix_timeline_type_at", table_name="timeline_events")
