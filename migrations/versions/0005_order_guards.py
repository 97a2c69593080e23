"""order guards: worst-case values, held units, a person's confirmation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

AMOUNT = sa.Numeric(28, 10, asdecimal=False)


def upgrade() -> None:
    with op.batch_alter_table("trade_previews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_basis", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("market_price", AMOUNT, nullable=True))
        batch_op.add_column(sa.Column("limit_discount_percent", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("held_quantity", AMOUNT, nullable=True))
        batch_op.add_column(sa.Column("open_sell_quantity", AMOUNT, nullable=True))
        batch_op.add_column(
            sa.Column("positions_fetched_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("confirmed_via", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("trade_orders", schema=None) as batch_op:
        batch_op.create_index("ix_trade_orders_user_claimed", ["user_id", "claimed_at"])


def downgrade() -> None:
    with op.batch_alter_table("trade_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_trade_orders_user_claimed")
    with op.batch_alter_table("trade_previews", schema=None) as batch_op:
        for column in (
            "confirmed_at",
            "confirmed_via",
            "positions_fetched_at",
            "open_sell_quantity",
            "held_quantity",
            "limit_discount_percent",
            "market_price",
            "value_basis",
        ):
            batch_op.drop_column(column)
