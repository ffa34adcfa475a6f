"""keyword_offers: a run offered in a thread because a post said a playbook's keyword, once per thread and
playbook across every bot process (the unique key), started at most once (its state).

Revision ID: 0029
Revises: 0028
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "keyword_offers",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("root_post_id", sa.String(26), nullable=False),
        sa.Column("playbook_id", sa.String(128), nullable=False),
        sa.Column("team_id", sa.String(26), nullable=False),
        sa.Column("channel_id", sa.String(26), nullable=False),
        sa.Column("post_id", sa.String(26), nullable=False),
        sa.Column("user_id", sa.String(26), nullable=False),
        sa.Column("matched", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("offer_post_id", sa.String(26), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acted_by", sa.String(26), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("root_post_id", "playbook_id"),
    )


def downgrade() -> None:
    op.drop_table("keyword_offers")
