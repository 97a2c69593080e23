"""The database schema (SQLAlchemy 2.x). Alembic migrations in ``migrations/`` create it.

Money and quantities are stored as NUMERIC so Postgres keeps exactly what the
provider sent; they are read back as float because the providers send JSON
floats to begin with and every figure we show is rounded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def Amount() -> Numeric:  # noqa: N802 - reads like a column type
    return Numeric(28, 10, asdecimal=False)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProviderConnection(Base):
    """A Plaid Item or a SnapTrade brokerage authorization, with its last known state."""

    __tablename__ = "provider_connections"
    __table_args__ = (UniqueConstraint("user_id", "provider", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    # Plaid item_id or SnapTrade authorization id: never an access token.
    external_id: Mapped[str] = mapped_column(String(100))
    institution_name: Mapped[str | None] = mapped_column(String(200))
    institution_slug: Mapped[str | None] = mapped_column(String(100))
    connection_type: Mapped[str | None] = mapped_column(String(10))
    # ok | login_required | disabled | error | removed
    status: Mapped[str] = mapped_column(String(20), default="ok")
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProviderCall(Base):
    """The call ledger: one row per HTTP request made to a provider (retries included)."""

    __tablename__ = "provider_calls"
    __table_args__ = (Index("ix_provider_calls_provider_called_at", "provider", "called_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    endpoint: Mapped[str] = mapped_column(String(200))
    # Item slug / authorization / account the call concerned; never a credential.
    subject: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(40))
    http_status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    called_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PositionRow(Base):
    """One normalized position (cash is one row per currency) as last fetched."""

    __tablename__ = "positions"
    __table_args__ = (Index("ix_positions_user_provider", "user_id", "provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    institution: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str | None] = mapped_column(String(200))
    account_type: Mapped[str | None] = mapped_column(String(50))
    account_mask: Mapped[str | None] = mapped_column(String(20))
    ticker: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(300))
    security_type: Mapped[str] = mapped_column(String(30))
    quantity: Mapped[float] = mapped_column(Amount())
    price: Mapped[float | None] = mapped_column(Amount())
    market_value: Mapped[float | None] = mapped_column(Amount())
    cost_basis: Mapped[float | None] = mapped_column(Amount())
    currency: Mapped[str] = mapped_column(String(3))
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
