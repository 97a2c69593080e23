"""trade audit: previews and orders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

``trade_orders.preview_id`` is UNIQUE: the database, not only a check in the
code, guarantees that one preview is executed at most once, also when two
processes race.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _amount() -> sa.Numeric:
    return sa.Numeric(precision=28, scale=10, asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "trade_previews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("preview_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("requested_via", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("account_name", sa.String(length=200), nullable=True),
        sa.Column("authorization_id", sa.String(length=100), nullable=True),
        sa.Column("brokerage", sa.String(length=200), nullable=False),
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("universal_symbol_id", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=10), nullable=False),
        sa.Column("time_in_force", sa.String(length=4), nullable=False),
        sa.Column("quantity", _amount(), nullable=False),
        sa.Column("limit_price", _amount(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("estimated_price", _amount(), nullable=True),
        sa.Column("estimated_value", _amount(), nullable=True),
        sa.Column("price_source", sa.String(length=30), nullable=True),
        sa.Column("commission", _amount(), nullable=True),
        sa.Column("fees", _amount(), nullable=True),
        sa.Column("remaining_cash", _amount(), nullable=True),
        sa.Column("provider_trade_id", sa.String(length=100), nullable=True),
        sa.Column("provider_answer", sa.Text(), nullable=True),
        sa.Column("order_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("preview_id"),
    )
    with op.batch_alter_table("trade_previews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trade_previews_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "trade_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("preview_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("requested_via", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("brokerage_order_id", sa.String(length=100), nullable=True),
        sa.Column("provider_status", sa.String(length=40), nullable=True),
        sa.Column("provider_answer", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["preview_id"], ["trade_previews.preview_id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("preview_id"),
    )


def downgrade() -> None:
    op.drop_table("trade_orders")
    with op.batch_alter_table("trade_previews", schema=None) as batch_op:
        batch_op.drop_index("ix_trade_previews_user_created")
    op.drop_table("trade_previews")
