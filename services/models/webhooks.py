"""Verified provider webhooks, and what they say about each source's freshness."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base


class WebhookEvent(Base):
    """One verified delivery. ``dedupe_key`` (UNIQUE) makes a copy received by another
    worker, or sent twice, a no-op: SnapTrade's webhookId, or for Plaid the body's hash."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_subject", "provider", "subject", "family"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    # "HOLDINGS:DEFAULT_UPDATE", "CONNECTION_BROKEN", ...
    kind: Mapped[str] = mapped_column(String(80))
    # Which events may overtake each other: "connection", "holdings", "activity", "link".
    family: Mapped[str] = mapped_column(String(20))
    # A Plaid item_id, a SnapTrade account or authorization id, a link token's hash.
    subject: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # When the provider sent it (Plaid's JWT iat, SnapTrade's eventTimestamp).
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # applied | older (an event sent later was already applied) | unmatched (no such user
    # or connection here) | ignored (a kind not acted on)
    outcome: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)


class SourceFreshness(Base):
    """One Plaid Item's or SnapTrade account's freshness, as webhooks tell it.

    ``due_since`` marks its holdings due (the next read refreshes that source alone);
    ``last_webhook_at`` says webhooks reach it (automatic refreshes then wait for the next
    one, or for the safety lifetime)."""

    __tablename__ = "source_freshness"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_webhook_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
