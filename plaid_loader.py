"""Plaid from a REPL: every Plaid building block under the name people call it by.

A thin face over ``providers.plaid`` (the adapter) and the services, adding what a
REPL needs: a ``client`` left out (or ``None``) is the configured Plaid client, a
``store`` left out is the configured secret store (``region_name`` picks another
AWS region), and removing an Item records it as removed, so the cost report and
``cache_info`` stop counting it::

    from plaid_loader import list_user_tokens, remove_plaid_institution
    list_user_tokens("demo@brokerage-hub.local")
    remove_plaid_institution("demo@brokerage-hub.local", "interactive-brokers")  # dry run

Nothing in the product imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.secret_store import SecretStore
from providers.plaid import items as _items
from providers.plaid import linking as _linking
from providers.plaid.client import make_plaid_client, require_plaid_client
from providers.plaid.errors import (
    APP_CREDENTIAL_CODES,
    ITEM_GONE_CODES,
    LOGIN_REQUIRED_CODES,
    RETRYABLE_CODES,
)
from providers.plaid.errors import map_plaid_error as _map_plaid_error
from providers.plaid.health import CONSENT_WARNING_DAYS
from providers.plaid.health import check_plaid_connection_health as _check_health
from providers.plaid.holdings import SECURITY_TYPE_MAP, normalize_plaid_holdings
from providers.plaid.holdings import fetch_plaid_holdings as _fetch_holdings
from providers.plaid.holdings import load_plaid_positions as _load_positions
from providers.plaid.items import institution_slug_of
from providers.plaid.linking import public_token_from_link
from services.composition import Services, configured_secret_store, configured_services
from services.linking.removal import record_item_removed

__all__ = [
    "APP_CREDENTIAL_CODES",
    "CONSENT_WARNING_DAYS",
    "ITEM_GONE_CODES",
    "LOGIN_REQUIRED_CODES",
    "RETRYABLE_CODES",
    "SECURITY_TYPE_MAP",
    "_map_plaid_error",
    "check_plaid_connection_health",
    "create_link_token",
    "delete_plaid_user_tokens",
    "exchange_public_token",
    "fetch_plaid_holdings",
    "get_link_token",
    "get_plaid_item",
    "get_plaid_token",
    "institution_slug_of",
    "list_user_tokens",
    "load_plaid_positions",
    "make_plaid_client",
    "normalize_plaid_holdings",
    "public_token_from_link",
    "remove_plaid_connection",
    "remove_plaid_institution",
    "wait_for_public_token",
]


def _client(client: Any) -> Any:
    """The given Plaid client (checked at once), or the configured one."""
    if client is None:
        return configured_services().plaid_client()
    return require_plaid_client(client)


def _store(store: SecretStore | None, region_name: str | None = None) -> SecretStore:
    """The given store; else the configured one (in ``region_name`` when that differs)."""
    return store if store is not None else configured_secret_store(region_name)


# --- holdings and Items ------------------------------------------------------------------


def fetch_plaid_holdings(
    access_token: str, client: Any = None, *, subject: str | None = None
) -> dict[str, Any]:
    """One ``/investments/holdings/get`` call for one Item (accounts, holdings, securities)."""
    return _fetch_holdings(access_token, _client(client), subject=subject)


def load_plaid_positions(
    access_token: str,
    client: Any = None,
    *,
    user_email: str,
    institution_slug: str,
    fetched_at: datetime | None = None,
) -> list[Any]:
    """Fetch one Item and normalize it into positions."""
    return _load_positions(
        access_token,
        _client(client),
        user_email=user_email,
        institution_slug=institution_slug,
        fetched_at=fetched_at,
    )


def get_plaid_item(access_token: str, client: Any = None, *, subject: str | None = None) -> dict:
    """``/item/get``: the Item's state (error, consent expiry, institution)."""
    return _items.get_plaid_item(access_token, _client(client), subject=subject)


def remove_plaid_connection(
    access_token: str, client: Any = None, *, subject: str | None = None
) -> dict[str, Any]:
    """``/item/remove`` for one access token (prefer :func:`remove_plaid_institution`)."""
    return _items.remove_plaid_connection(access_token, _client(client), subject=subject)


# --- tokens in the secret store ----------------------------------------------------------


def list_user_tokens(
    user_id: str, region_name: str | None = None, *, store: SecretStore | None = None
) -> list[str]:
    """The names (strings) of the user's Plaid access-token secrets, sorted."""
    return _items.list_user_tokens(user_id, _store(store, region_name))


def get_plaid_token(
    secret_name: str, region_name: str | None = None, *, store: SecretStore | None = None
) -> str:
    """Read one access token from the secret store."""
    return _items.get_plaid_token(secret_name, _store(store, region_name))


def remove_plaid_institution(
    user_id: str,
    institution_slug: str,
    region_name: str | None = None,
    client: Any = None,
    dry_run: bool = True,
    *,
    store: SecretStore | None = None,
    services: Services | None = None,
) -> dict[str, Any]:
    """Remove one institution's Plaid Item, then schedule its token secret for deletion.

    Dry run by default. The Item is removed at Plaid first, then the secret is only
    scheduled for deletion (7-day recovery window). A real removal is recorded as
    ``removed`` and the institution's cached Plaid rows are dropped, so the cost
    report and ``cache_info`` stop counting it.
    """
    hub = services or configured_services()
    result = _items.remove_plaid_institution(
        user_id,
        institution_slug,
        _client(client),
        store=_store(store, region_name),
        dry_run=dry_run,
    )
    if result["plaid_removed"]:
        _forget_removed_item(hub, user_id, institution_slug)
    return result


def delete_plaid_user_tokens(
    user_id: str,
    region_name: str | None = None,
    client: Any = None,
    dry_run: bool = True,
    *,
    store: SecretStore | None = None,
    services: Services | None = None,
) -> list[dict[str, Any]]:
    """Remove every Plaid Item of the user, one by one (dry run by default)."""
    hub = services or configured_services()
    results = _items.delete_plaid_user_tokens(
        user_id, _client(client), store=_store(store, region_name), dry_run=dry_run
    )
    for result in results:
        if result["plaid_removed"]:
            _forget_removed_item(hub, user_id, institution_slug_of(result["secret_name"]))
    return results


def _forget_removed_item(hub: Services, user_id: str, institution_slug: str) -> None:
    name = record_item_removed(hub.connections, user_id, institution_slug)
    if user_id == hub.user_email:
        hub.positions.delete_provider_positions("plaid", institution=name)


# --- linking (Hosted Link) ---------------------------------------------------------------


def create_link_token(
    client: Any = None,
    user_email: str | None = None,
    *,
    hosted_link: bool = True,
    completion_redirect_uri: str | None = None,
    access_token: str | None = None,
) -> dict[str, Any]:
    """``/link/token/create`` for investments; with ``access_token`` it opens update mode."""
    return _linking.create_link_token(
        _client(client),
        user_email or configured_services().user_email,
        hosted_link=hosted_link,
        completion_redirect_uri=completion_redirect_uri,
        access_token=access_token,
    )


def get_link_token(link_token: str, client: Any = None) -> dict[str, Any]:
    """``/link/token/get``: the Hosted Link sessions of a link token."""
    return _linking.get_link_token(link_token, _client(client))


def wait_for_public_token(
    link_token: str,
    timeout: float = 300,
    poll: float = 10,
    *,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> str:
    """Poll ``/link/token/get`` until the person finishes Hosted Link, or time out."""
    return _linking.wait_for_public_token(
        link_token, timeout, poll, client=_client(client), sleep=sleep, monotonic=monotonic
    )


def exchange_public_token(public_token: str, client: Any = None) -> tuple[str, str]:
    """``/item/public_token/exchange`` -> (access_token, item_id)."""
    return _linking.exchange_public_token(public_token, _client(client))


# --- connection health -------------------------------------------------------------------


def check_plaid_connection_health(
    user_email: str,
    client: Any = None,
    *,
    store: SecretStore | None = None,
    region_name: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One ``/item/get`` per Plaid Item of the user: is it usable, and what does it need."""
    return _check_health(user_email, _client(client), store=_store(store, region_name), now=now)
