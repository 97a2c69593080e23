"""Runs of moving an institution between providers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base

# The states of a run that holds its institution: no second run may start meanwhile.
ACTIVE_STATUSES = ("running", "executing", "removed")
ACTIVE_CONDITION = "status IN ('running', 'executing', 'removed')"


class MigrationRun(Base):
    """One run of moving an institution between providers, with its full report."""

    __tablename__ = "migration_runs"
    __table_args__ = (
        Index("ix_migration_runs_user_institution", "user_id", "institution_slug"),
        # One active run per institution, whoever started it, on every host.
        Index(
            "uq_migration_runs_one_active",
            "user_id",
            "institution_slug",
            unique=True,
            sqlite_where=text(ACTIVE_CONDITION),
            postgresql_where=text(ACTIVE_CONDITION),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    institution_slug: Mapped[str] = mapped_column(String(100))
    source_provider: Mapped[str] = mapped_column(String(20))
    target_provider: Mapped[str] = mapped_column(String(20))
    # running (the checks) | planned | stopped | executing | removed | completed | failed
    # | abandoned (checks that never finished: nothing was changed)
    status: Mapped[str] = mapped_column(String(20))
    executed: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Whoever runs it holds it until then, renewed at every step; after it, another
    # process may take an interrupted run over.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
