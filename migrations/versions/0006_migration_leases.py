"""migration runs: one active run per institution, held by a lease

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('running', 'executing', 'removed')"


def upgrade() -> None:
    with op.batch_alter_table("migration_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    runs = sa.table(
        "migration_runs",
        sa.column("id", sa.Integer),
        sa.column("user_id", sa.Integer),
        sa.column("institution_slug", sa.String),
        sa.column("status", sa.String),
    )
    conn = op.get_bind()
    # Checks that were running when the old code stopped will never finish: nothing was
    # changed by them, so they are closed; of several runs past the gates for one
    # institution only the newest stays resumable.
    conn.execute(sa.update(runs).where(runs.c.status == "running").values(status="abandoned"))
    newest: set[tuple[int, str]] = set()
    past_the_gates = conn.execute(
        sa.select(runs.c.id, runs.c.user_id, runs.c.institution_slug)
        .where(runs.c.status.in_(("executing", "removed")))
        .order_by(runs.c.id.desc())
    ).all()
    for run_id, user_id, slug in past_the_gates:
        if (user_id, slug) in newest:
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(status="failed"))
        newest.add((user_id, slug))
    op.create_index(
        "uq_migration_runs_one_active",
        "migration_runs",
        ["user_id", "institution_slug"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_migration_runs_one_active", table_name="migration_runs")
    with op.batch_alter_table("migration_runs", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
