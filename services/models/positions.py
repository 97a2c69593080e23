"""Cached positions and each provider's cache state."""

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
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Amount, Base, ProviderText


class PositionRow(Base):
    """One normalized position (cash is one row per currency) as last fetched."""

    __tablename__ = "positions"
    __table_args__ = (Index("ix_positions_user_provider", "user_id", "provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    institution: Mapped[str] = mapped_column(ProviderText(200))
    account_id: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str | None] = mapped_column(ProviderText(200))
    account_type: Mapped[str | None] = mapped_column(ProviderText(50))
    account_mask: Mapped[str | None] = mapped_column(ProviderText(20))
    ticker: Mapped[str | None] = mapped_column(ProviderText(40))
    name: Mapped[str | None] = mapped_column(ProviderText(300))
    security_type: Mapped[str] = mapped_column(ProviderText(30))
    quantity: Mapped[float] = mapped_column(Amount())
    price: Mapped[float | None] = mapped_column(Amount())
    market_value: Mapped[float | None] = mapped_column(Amount())
    cost_basis: Mapped[float | None] = mapped_column(Amount())
    currency: Mapped[str] = mapped_column(ProviderText(3))
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "figi:...", "isin:..." or "cusip:..." when the provider names the security.
    security_id: Mapped[str | None] = mapped_column(ProviderText(30))


class PositionSnapshot(Base):
    """Cache state of one (user, provider): when its rows were fetched, and the last failure.

    Its row is also the lock that makes concurrent refreshers fetch once
    (SELECT ... FOR UPDATE on Postgres).
    """

    __tablename__ = "position_snapshots"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Bumped by every refresh attempt: a caller that waited on the lock sees that
    # someone else fetched meanwhile, without comparing (injectable) clocks.
    generation: Mapped[int] = mapped_column(Integer, default=0)


class RefusedRefresh(Base):
    """Refreshes someone asked for that the refresh cooldown answered from the cache, per
    user, provider and day (UTC): the cost report's refusals.

    ``refused`` counts the requests that fetched nothing; ``calls`` the holdings calls spared
    (one per Plaid Item or SnapTrade account answered from its rows, also when the others
    were fetched). One row a day at most, however often anyone asks."""

    __tablename__ = "refused_refreshes"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    refused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
