"""SnapTrade from a REPL: every SnapTrade building block under the name people call it by.

A thin face over ``providers.snaptrade`` (the adapter), adding what a REPL needs: a
``client`` left out (or ``None``) is the configured SnapTrade client, and a
``user_secret`` left out is read from the configured secret store
(``snaptrade/user_secret/<email>``)::

    from snaptrade_loader import check_snaptrade_connection_health
    check_snaptrade_connection_health("demo@brokerage-hub.local", probe_trading=True)

Nothing in the product imports this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.redaction import register_secret
from core.secret_store import SecretStore
from providers.snaptrade import accounts as _accounts
from providers.snaptrade import connections as _connections
from providers.snaptrade.accounts import authorization_id_of
from providers.snaptrade.client import make_snaptrade_client, require_snaptrade_client
from providers.snaptrade.errors import map_snaptrade_error, snaptrade_error_code
from providers.snaptrade.health import HEALTH_PROBE_SYMBOL
from providers.snaptrade.health import (
    check_snaptrade_connection_health as _check_health,
)
from providers.snaptrade.holdings import INSTRUMENT_KINDS, normalize_snaptrade_holdings
from providers.snaptrade.holdings import load_snaptrade_positions as _load_positions
from services.composition import configured_secret_store, configured_services

__all__ = [
    "HEALTH_PROBE_SYMBOL",
    "INSTRUMENT_KINDS",
    "authorization_id_of",
    "check_snaptrade_connection_health",
    "fetch_snaptrade_account",
    "fetch_snaptrade_holdings",
    "list_snaptrade_connections",
    "load_snaptrade_positions",
    "login_snaptrade_user",
    "make_snaptrade_client",
    "map_snaptrade_error",
    "normalize_snaptrade_holdings",
    "register_snaptrade_user",
    "snaptrade_error_code",
    "user_secret_for",
]


def _client(client: Any) -> Any:
    """The given SnapTrade client (checked at once), or the configured one."""
    if client is None:
        return configured_services().snaptrade_client()
    return require_snaptrade_client(client)


def user_secret_for(
    user_email: str, *, store: SecretStore | None = None, region_name: str | None = None
) -> str:
    """The person's SnapTrade user secret, from the (configured) secret store."""
    return _accounts.user_secret_for(user_email, store or configured_secret_store(region_name))


def _secret(user_email: str, user_secret: str | None) -> str:
    if user_secret:
        register_secret(user_secret)  # registered where it enters, before SnapTrade can echo it
        return user_secret
    return user_secret_for(user_email)


def register_snaptrade_user(user_email: str, client: Any = None) -> str:
    """Register the person with SnapTrade; returns the new user secret (store it at once)."""
    return _connections.register_snaptrade_user(user_email, _client(client))


def login_snaptrade_user(
    client: Any = None,
    user_id: str | None = None,
    user_secret: str | None = None,
    *,
    connection_type: str = "read",
    reconnect: str | None = None,
    custom_redirect: str | None = None,
    broker: str | None = None,
) -> dict[str, Any]:
    """Open the connection portal: returns ``redirectURI`` (and ``sessionId``)."""
    user_id = user_id or configured_services().user_email
    return _connections.login_snaptrade_user(
        _client(client),
        user_id,
        _secret(user_id, user_secret),
        connection_type=connection_type,
        reconnect=reconnect,
        custom_redirect=custom_redirect,
        broker=broker,
    )


def list_snaptrade_connections(
    user_email: str, client: Any = None, *, user_secret: str | None = None
) -> list[dict[str, Any]]:
    """The user's brokerage authorizations: id, brokerage, type, disabled state."""
    return _connections.list_snaptrade_connections(
        user_email, _client(client), user_secret=_secret(user_email, user_secret)
    )


def fetch_snaptrade_account(
    client: Any, user_id: str, user_secret: str | None, account: dict[str, Any]
) -> dict[str, Any]:
    """One account's positions (``/positions/all``) and cash (``/balances``)."""
    return _accounts.fetch_snaptrade_account(
        _client(client), user_id, _secret(user_id, user_secret), account
    )


def fetch_snaptrade_holdings(
    user_email: str, client: Any = None, *, user_secret: str | None = None
) -> dict[str, Any]:
    """Every account with its positions (``/positions/all``) and cash (``/balances``)."""
    return _accounts.fetch_snaptrade_holdings(
        user_email, _client(client), user_secret=_secret(user_email, user_secret)
    )


def load_snaptrade_positions(
    user_email: str,
    client: Any = None,
    *,
    user_secret: str | None = None,
    fetched_at: datetime | None = None,
) -> list[Any]:
    """Fetch and normalize every SnapTrade account of the user."""
    return _load_positions(
        user_email,
        _client(client),
        user_secret=_secret(user_email, user_secret),
        fetched_at=fetched_at,
    )


def check_snaptrade_connection_health(
    user_email: str,
    client: Any = None,
    probe_trading: bool = False,
    *,
    user_secret: str | None = None,
) -> list[dict[str, Any]]:
    """One row per brokerage authorization: its type, state, and what works (see the adapter)."""
    return _check_health(
        user_email,
        _client(client),
        probe_trading,
        user_secret=_secret(user_email, user_secret),
    )
