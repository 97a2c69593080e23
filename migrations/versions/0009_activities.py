"""activity history: each account's trades, dividends, interest and fees, and each source's sync

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("account_name", sa.String(length=200), nullable=True),
        sa.Column("activity_id", sa.String(length=100), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("ticker", sa.String(length=40), nullable=True),
        sa.Column("security_id", sa.String(length=30), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.Column("quantity", sa.Numeric(28, 10, asdecimal=False), nullable=True),
        sa.Column("price", sa.Numeric(28, 10, asdecimal=False), nullable=True),
        sa.Column("amount", sa.Numeric(28, 10, asdecimal=False), nullable=True),
        sa.Column("fee", sa.Numeric(28, 10, asdecimal=False), nullable=True),
        sa.Column("currency", sa.String(length=12), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "provider", "account_id", "activity_id"),
    )
    op.create_index("ix_activities_user_date", "activities", ["user_id", "trade_date"])
    op.create_index(
        "ix_activities_source_date", "activities", ["user_id", "provider", "source", "trade_date"]
    )
    op.create_table(
        "activity_syncs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("synced_from", sa.Date(), nullable=True),
        sa.Column("synced_through", sa.Date(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "provider", "source"),
    )


def downgrade() -> None:
    op.drop_table("activity_syncs")
    op.drop_index("ix_activities_source_date", table_name="activities")
    op.drop_index("ix_activities_user_date", table_name="activities")
    op.drop_table("activities")
