"""webhooks: verified deliveries, each source's freshness, Plaid item ids, activity due

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("dedupe_key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("family", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index(
        "ix_webhook_events_subject", "webhook_events", ["provider", "subject", "family"]
    )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])
    op.create_table(
        "source_freshness",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("due_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_webhook_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "provider", "source"),
    )
    with op.batch_alter_table("provider_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_id", sa.String(length=100), nullable=True))
        batch_op.create_index("ix_provider_connections_item_id", ["item_id"], unique=False)
    with op.batch_alter_table("activity_syncs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("activity_syncs", schema=None) as batch_op:
        batch_op.drop_column("due_since")
    with op.batch_alter_table("provider_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_connections_item_id")
        batch_op.drop_column("item_id")
    op.drop_table("source_freshness")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index("ix_webhook_events_subject", table_name="webhook_events")
    op.drop_table("webhook_events")
