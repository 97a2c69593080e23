"""migration runs: each move of an institution between providers, with its report

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("institution_slug", sa.String(length=100), nullable=False),
        sa.Column("source_provider", sa.String(length=20), nullable=False),
        sa.Column("target_provider", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("executed", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("migration_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_migration_runs_user_institution", ["user_id", "institution_slug"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("migration_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_migration_runs_user_institution")
    op.drop_table("migration_runs")
