"""The database schema (SQLAlchemy 2.x). Alembic migrations in ``migrations/`` create it.

Money and quantities are stored as NUMERIC so Postgres keeps exactly what the
provider sent; they are read back as float because the providers send JSON
floats to begin with and every figure we show is rounded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
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


class TradePreview(Base):
    """The audit row of one order preview (SnapTrade order impact), and its lifecycle.

    ``preview_id`` is our own unguessable id, the only handle a caller gets;
    ``order_hash`` binds it to the order's fields and account, so a row whose
    order was changed after the preview is refused at execution.
    NULL commission or fees mean SnapTrade did not say: shown as unknown, never as 0.
    """

    __tablename__ = "trade_previews"
    __table_args__ = (Index("ix_trade_previews_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    preview_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_via: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str | None] = mapped_column(String(200))
    authorization_id: Mapped[str | None] = mapped_column(String(100))
    brokerage: Mapped[str] = mapped_column(String(200))
    symbol: Mapped[str] = mapped_column(String(40))
    universal_symbol_id: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(300))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(10))
    time_in_force: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Amount())
    limit_price: Mapped[float | None] = mapped_column(Amount())
    currency: Mapped[str | None] = mapped_column(String(3))
    estimated_price: Mapped[float | None] = mapped_column(Amount())
    estimated_value: Mapped[float | None] = mapped_column(Amount())
    price_source: Mapped[str | None] = mapped_column(String(30))
    commission: Mapped[float | None] = mapped_column(Amount())
    fees: Mapped[float | None] = mapped_column(Amount())
    remaining_cash: Mapped[float | None] = mapped_column(Amount())
    provider_trade_id: Mapped[str | None] = mapped_column(String(100))
    # The provider's answer (order impact JSON, or its error), for the audit.
    provider_answer: Mapped[str | None] = mapped_column(Text)
    order_hash: Mapped[str] = mapped_column(String(64))
    # refused | previewed | placing | executed | failed
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TradeOrder(Base):
    """The audit row of one execution: at most one per preview (the UNIQUE constraint).

    The row is inserted, status ``placing``, in the same transaction that claims
    the preview and BEFORE SnapTrade is called, so two racing executions (in any
    number of processes) cannot both reach the broker.
    """

    __tablename__ = "trade_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    preview_id: Mapped[str] = mapped_column(ForeignKey("trade_previews.preview_id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_via: Mapped[str] = mapped_column(String(20))
    # placing | placed | failed | unknown (no answer: it may or may not be at the broker)
    status: Mapped[str] = mapped_column(String(20))
    brokerage_order_id: Mapped[str | None] = mapped_column(String(100))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    provider_answer: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
