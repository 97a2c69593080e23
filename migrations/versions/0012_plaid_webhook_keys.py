"""Plaid's webhook verification keys, shared by every worker and host

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plaid_webhook_keys",
        sa.Column("kid", sa.String(length=200), nullable=False),
        sa.Column("jwk", sa.Text(), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("looked_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_lookups", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_index("ix_plaid_webhook_keys_looked_up_at", "plaid_webhook_keys", ["looked_up_at"])


def downgrade() -> None:
    op.drop_index("ix_plaid_webhook_keys_looked_up_at", table_name="plaid_webhook_keys")
    op.drop_table("plaid_webhook_keys")
