"""SnapTrade connection health, checked without disturbing fragile connections."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.errors import ConnectionDisabled, ProviderError
from core.redaction import register_secret
from providers.snaptrade.accounts import (
    extract_authorization_id,
    get_account_balances,
    list_user_accounts,
    search_account_symbols,
)
from providers.snaptrade.connections import brokerage_name, get_authorization
from providers.snaptrade.errors import map_snaptrade_trading_error

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

log = logging.getLogger(__name__)

# The health check's trading probe: a symbol search is read-only at the broker,
# yet answers 403 1020 / 1066 when the app or the connection may not trade.
HEALTH_PROBE_SYMBOL = "AAPL"


def check_snaptrade_connection_health(
    user_email: str,
    client: SnapTrade,
    probe_trading: bool = False,
    *,
    user_secret: str,
) -> list[dict[str, Any]]:
    """One row per brokerage authorization of the user: its type, state, and what works.

    Passive by default: accounts, the authorization's detail and one balance
    read per authorization. ``probe_trading=True`` adds one symbol search per
    trade connection that is not disabled. A disabled connection is not called
    beyond its detail (calls on a broken connection can get it disabled for good).

    Each row has exactly: ``authorization_id``, ``brokerage_name``,
    ``connection_type`` ("read"/"trade"; None when the detail call failed),
    ``disabled``, ``disabled_date``, ``account_ids``, ``data_ok``,
    ``trading_ok`` (None unless probed) and ``trading_error``: why trading
    does not work, or, when the connection itself could not be checked, why not.
    An error on one authorization stays in its row; failing to list the
    accounts at all raises (an error is not "no connections").
    """
    register_secret(user_secret)  # registered where it enters, before SnapTrade can echo it
    secret = user_secret
    accounts = list_user_accounts(client, user_email, secret)
    by_authorization: dict[str, list[dict[str, Any]]] = {}
    for account in accounts:
        authorization_id = extract_authorization_id(account.get("brokerage_authorization"))
        if authorization_id is None:
            log.warning("SnapTrade account %s has no brokerage authorization", account.get("id"))
            continue
        by_authorization.setdefault(authorization_id, []).append(account)
    return [
        _authorization_health(client, user_email, secret, authorization_id, owned, probe_trading)
        for authorization_id, owned in by_authorization.items()
    ]


def _authorization_health(
    client: SnapTrade,
    user_id: str,
    user_secret: str,
    authorization_id: str,
    accounts: list[dict[str, Any]],
    probe_trading: bool,
) -> dict[str, Any]:
    first_account_id = str(accounts[0].get("id"))
    row: dict[str, Any] = {
        "authorization_id": authorization_id,
        "brokerage_name": str(accounts[0].get("institution_name") or "Unknown"),
        "connection_type": None,
        "disabled": False,
        "disabled_date": None,
        "account_ids": [str(a.get("id")) for a in accounts],
        "data_ok": False,
        "trading_ok": None,
        "trading_error": None,
    }

    def explain(error: ProviderError) -> str:
        return map_snaptrade_trading_error(
            error, row["brokerage_name"], authorization_id=authorization_id
        ).message

    try:
        detail = get_authorization(client, user_id, user_secret, authorization_id)
    except ProviderError as exc:
        row["disabled"] = isinstance(exc, ConnectionDisabled)
        row["trading_error"] = f"connection check failed: {explain(exc)}"
        return row
    if detail.get("brokerage") or detail.get("name"):
        row["brokerage_name"] = brokerage_name(detail)
    row["connection_type"] = detail.get("type")
    row["disabled"] = bool(detail.get("disabled"))
    row["disabled_date"] = detail.get("disabled_date")
    if row["disabled"]:
        return row
    try:
        get_account_balances(client, user_id, user_secret, first_account_id)
        row["data_ok"] = True
    except ProviderError as exc:
        if isinstance(exc, ConnectionDisabled):
            row["disabled"] = True
            row["trading_error"] = explain(exc)
            return row
        row["trading_error"] = f"data check failed: {explain(exc)}"
    if probe_trading and row["connection_type"] == "trade":
        try:
            search_account_symbols(
                client, user_id, user_secret, first_account_id, HEALTH_PROBE_SYMBOL
            )
            row["trading_ok"] = True
        except ProviderError as exc:
            row["trading_ok"] = False
            row["trading_error"] = explain(exc)
            # A disabled connection answers 3003 on any call: record it as disabled.
            row["disabled"] = isinstance(exc, ConnectionDisabled)
    return row
