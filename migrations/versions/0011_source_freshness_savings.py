"""each Item's and account's own generation; refreshes webhooks made unnecessary

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_freshness") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "avoided_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "provider", "after"),
    )
    op.create_index("ix_avoided_refreshes_at", "avoided_refreshes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_avoided_refreshes_at", table_name="avoided_refreshes")
    op.drop_table("avoided_refreshes")
    with op.batch_alter_table("source_freshness") as batch:
        batch.drop_column("generation")
