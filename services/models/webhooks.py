"""Verified provider webhooks, and what they say about each source's freshness."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
    one, or for the safety lifetime); ``fetched_at`` is when its holdings were last stored
    (its as-of)."""

    __tablename__ = "source_freshness"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_webhook_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Moves each time this source's holdings are stored: a caller that waited for another's
    # refresh of the source sees it moved and fetches nothing.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AvoidedRefresh(Base):
    """A refresh the lifetime rule alone would have made at ``at`` (the provider's rows were
    older than its ``*_CACHE_HOURS``), which webhooks made unnecessary: the cost report's
    calls avoided. ``after`` is the refresh, real or avoided, it would have followed; UNIQUE,
    so workers reading at the same moment count it once."""

    __tablename__ = "avoided_refreshes"
    __table_args__ = (UniqueConstraint("user_id", "provider", "after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # holdings calls it would have made: one per Plaid Item or SnapTrade account
    calls: Mapped[int] = mapped_column(Integer)


class PlaidWebhookKey(Base):
    """One of Plaid's webhook verification keys, by ``kid``, and the lookups made for it.

    Kept in the database so every worker and host verifies with the keys any of them
    fetched, and so a ``kid`` is looked up at most once per window across all of them.
    ``outcome``: ``pending`` (a process is asking Plaid now), ``found`` (``jwk`` holds the
    public key; ``expired_at`` as Plaid last said), ``failed`` (Plaid knew no such key, or
    could not be asked: not asked again until the window passes). Public keys only: nothing
    here is a secret."""

    __tablename__ = "plaid_webhook_keys"

    kid: Mapped[str] = mapped_column(String(200), primary_key=True)
    jwk: Mapped[str | None] = mapped_column(Text)
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(10))
    looked_up_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Lookups of this kid that found no key: counted here, not in the provider call ledger.
    failed_lookups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
