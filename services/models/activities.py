"""Cached account activity (trades, dividends, interest, fees) and each source's sync state."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Amount, Base, ProviderText


class ActivityRow(Base):
    """One normalized activity, as last fetched. ``source`` is what was synced to get it:
    a Plaid Item (its institution slug) or a SnapTrade account (its id)."""

    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("user_id", "provider", "account_id", "activity_id"),
        Index("ix_activities_user_date", "user_id", "trade_date"),
        Index("ix_activities_source_date", "user_id", "provider", "source", "trade_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    institution: Mapped[str] = mapped_column(ProviderText(200))
    account_id: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str | None] = mapped_column(ProviderText(200))
    activity_id: Mapped[str] = mapped_column(ProviderText(100))
    trade_date: Mapped[date] = mapped_column(Date)
    type: Mapped[str] = mapped_column(String(20))
    ticker: Mapped[str | None] = mapped_column(ProviderText(40))
    security_id: Mapped[str | None] = mapped_column(ProviderText(30))
    description: Mapped[str | None] = mapped_column(ProviderText(300))
    quantity: Mapped[float | None] = mapped_column(Amount())
    price: Mapped[float | None] = mapped_column(Amount())
    amount: Mapped[float | None] = mapped_column(Amount())
    fee: Mapped[float | None] = mapped_column(Amount())
    currency: Mapped[str] = mapped_column(ProviderText(12))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActivitySync(Base):
    """How far one source's history is stored, when it was last synced, and how that went.

    ``generation`` moves with every sync that changed rows: a cursor cut from older rows
    is refused."""

    __tablename__ = "activity_syncs"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    institution: Mapped[str] = mapped_column(ProviderText(200))
    synced_from: Mapped[date | None] = mapped_column(Date)
    synced_through: Mapped[date | None] = mapped_column(Date)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # A webhook said new activity is waiting: the next read syncs this source.
    due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
