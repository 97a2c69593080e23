"""State that more than one web request needs: sessions, login attempts, link flows.

Kept in the database so that any worker process on any host can serve the next
request of a flow another one started.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base


class WebSession(Base):
    """One logged-in browser. The cookie holds a random id; only its hash is kept here."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The user's auth epoch when the session began: a new password moves the user's
    # epoch, which ends every older session at once.
    auth_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """One password check, reserved before it runs (the login brake counts these)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_client", "client", "attempted_at"),
        Index("ix_login_attempts_account", "account", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the address, or device:<id> / cli:<terminal user>: whose budget (services.web_access.brake)
    client: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(320))  # the account being logged into
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # reserved (being checked) | failed; a success deletes its own row
    outcome: Mapped[str] = mapped_column(String(10))


class PlaidLinkSession(Base):
    """One Hosted Link session, advanced by whichever process serves the next poll."""

    __tablename__ = "plaid_link_sessions"

    job_id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(10))  # new | update
    # Plaid's link token: it opens Link for this person, nothing more; it is not an
    # access token and expires within hours.
    link_token: Mapped[str] = mapped_column(String(200))
    hosted_link_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    institution_name: Mapped[str | None] = mapped_column(String(200))
    institution_slug: Mapped[str | None] = mapped_column(String(100))
    poll_seconds: Mapped[float] = mapped_column(Float)
    # The next /link/token/get may be sent at this moment, by one process (claimed here).
    next_poll_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A process finishing the link holds it until then; after that another may take over.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SnapTradePortalFlow(Base):
    """One trip through the SnapTrade connection portal, until the person comes back."""

    __tablename__ = "snaptrade_portal_flows"

    flow_id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    connection_type: Mapped[str] = mapped_column(String(10))
    reconnect: Mapped[str | None] = mapped_column(String(100))
    portal_url: Mapped[str] = mapped_column(Text)
    # The person's connections when the trip began (JSON), to tell what it changed.
    connections_before: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # open | returned
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
