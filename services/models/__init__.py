"""The database schema (SQLAlchemy 2.x). Alembic migrations in ``migrations/`` create it.

Money and quantities are stored as NUMERIC so Postgres keeps exactly what the
provider sent; they are read back as float because the providers send JSON
floats to begin with and every figure we show is rounded.
"""

from services.models.activities import ActivityRow, ActivitySync
from services.models.base import Amount, Base
from services.models.fx import FxRate, FxState
from services.models.migration import MigrationRun
from services.models.people import ProviderCall, ProviderConnection, User
from services.models.positions import PositionRow, PositionSnapshot, RefusedRefresh
from services.models.trading import TradeOrder, TradePreview
from services.models.web import LoginAttempt, PlaidLinkSession, SnapTradePortalFlow, WebSession
from services.models.webhooks import (
    AvoidedRefresh,
    PlaidWebhookKey,
    SourceFreshness,
    WebhookEvent,
)

__all__ = [
    "ActivityRow",
    "ActivitySync",
    "Amount",
    "AvoidedRefresh",
    "Base",
    "FxRate",
    "FxState",
    "LoginAttempt",
    "MigrationRun",
    "PlaidLinkSession",
    "PlaidWebhookKey",
    "PositionRow",
    "PositionSnapshot",
    "ProviderCall",
    "ProviderConnection",
    "RefusedRefresh",
    "SnapTradePortalFlow",
    "SourceFreshness",
    "TradeOrder",
    "TradePreview",
    "User",
    "WebSession",
    "WebhookEvent",
]
