"""People, their provider connections, and the call ledger."""

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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base, ProviderText


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Moves when the password changes: every session begun before it ends.
    auth_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ProviderConnection(Base):
    """A Plaid Item or a SnapTrade brokerage authorization, with its last known state."""

    __tablename__ = "provider_connections"
    __table_args__ = (UniqueConstraint("user_id", "provider", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    # Plaid item_id or SnapTrade authorization id: never an access token.
    external_id: Mapped[str] = mapped_column(String(100))
    institution_name: Mapped[str | None] = mapped_column(ProviderText(200))
    institution_slug: Mapped[str | None] = mapped_column(String(100))
    # Plaid's item_id (webhooks name the Item by it); None for SnapTrade.
    item_id: Mapped[str | None] = mapped_column(String(100), index=True)
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
