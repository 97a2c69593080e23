"""positions: a stable identifier of the security (FIGI, ISIN or CUSIP) when given

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows cached before this are filled on their next refresh; until then the holdings
    # view matches them by ticker and currency, as it does any row without one.
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("security_id", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_column("security_id")
