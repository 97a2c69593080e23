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
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base


class MigrationRun(Base):
    """One run of moving an institution between providers, with its full report."""

    __tablename__ = "migration_runs"
    __table_args__ = (Index("ix_migration_runs_user_institution", "user_id", "institution_slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    institution_slug: Mapped[str] = mapped_column(String(100))
    source_provider: Mapped[str] = mapped_column(String(20))
    target_provider: Mapped[str] = mapped_column(String(20))
    # planned | stopped | executing | removed | completed | failed
    status: Mapped[str] = mapped_column(String(20))
    executed: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
