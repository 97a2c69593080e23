"""The trade audit: previews and orders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Amount, Base, ProviderText


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
    account_name: Mapped[str | None] = mapped_column(ProviderText(200))
    authorization_id: Mapped[str | None] = mapped_column(String(100))
    brokerage: Mapped[str] = mapped_column(ProviderText(200))
    symbol: Mapped[str] = mapped_column(ProviderText(40))
    universal_symbol_id: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(ProviderText(300))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(10))
    time_in_force: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float] = mapped_column(Amount())
    limit_price: Mapped[float | None] = mapped_column(Amount())
    currency: Mapped[str | None] = mapped_column(ProviderText(3))
    estimated_price: Mapped[float | None] = mapped_column(Amount())
    estimated_value: Mapped[float | None] = mapped_column(Amount())
    price_source: Mapped[str | None] = mapped_column(String(30))
    # How the worst-case value was reached, in words (shown with the order to the person).
    value_basis: Mapped[str | None] = mapped_column(Text)
    # The highest price known for the symbol when the order was checked, and how far (in
    # percent) a SELL limit was below it when the caller asked for it anyway.
    market_price: Mapped[float | None] = mapped_column(Amount())
    limit_discount_percent: Mapped[float | None] = mapped_column(Float)
    # For a SELL: units held when the position was fetched, and open sells at the broker.
    held_quantity: Mapped[float | None] = mapped_column(Amount())
    open_sell_quantity: Mapped[float | None] = mapped_column(Amount())
    positions_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    commission: Mapped[float | None] = mapped_column(Amount())
    fees: Mapped[float | None] = mapped_column(Amount())
    remaining_cash: Mapped[float | None] = mapped_column(Amount())
    provider_trade_id: Mapped[str | None] = mapped_column(String(100))
    # The provider's answer (order impact JSON, or its error), for the audit.
    provider_answer: Mapped[str | None] = mapped_column(Text)
    order_hash: Mapped[str] = mapped_column(String(64))
    # refused | previewed | confirmed | rejected | placing | executed | failed | unknown
    status: Mapped[str] = mapped_column(String(20))
    # Who confirmed it, and when: a person on the web page, the CLI, or the MCP client's
    # own question to the person (elicitation).
    confirmed_via: Mapped[str | None] = mapped_column(String(20))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    __table_args__ = (Index("ix_trade_orders_user_claimed", "user_id", "claimed_at"),)

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
