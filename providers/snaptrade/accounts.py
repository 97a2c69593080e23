"""SnapTrade accounts, cash balances, positions and symbol search for one user.

``/accounts/{id}/holdings`` answers 410 Gone for apps registered after 2026-05-11,
so holdings are assembled from ``/positions/all`` and ``/balances`` per account.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.errors import MalformedResponse
from core.secret_names import snaptrade_user_secret_name
from core.secret_store import SecretStore
from providers.snaptrade.client import body, snaptrade_call, with_ids
from providers.snaptrade.errors import PROVIDER

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

log = logging.getLogger(__name__)


def user_secret_for(user_email: str, store: SecretStore) -> str:
    """The person's SnapTrade user secret, from the secret store."""
    return store.get(snaptrade_user_secret_name(user_email))


@snaptrade_call("GET /accounts")
def list_user_accounts(client: SnapTrade, user_id: str, user_secret: str) -> list[dict[str, Any]]:
    accounts = body(
        client.account_information.list_user_accounts(user_id=user_id, user_secret=user_secret),
        "/accounts",
        list,
    )
    return with_ids(accounts, "/accounts", "an account")


def _has_currency(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("code"))
    return isinstance(value, str) and bool(value)


def _with_currencies(balances: list[Any], endpoint: str) -> list[dict[str, Any]]:
    """A cash amount without its currency cannot be shown: guessing USD would mislabel money."""
    for balance in balances:
        if not isinstance(balance, dict) or (
            balance.get("cash") is not None and not _has_currency(balance.get("currency"))
        ):
            raise MalformedResponse(
                f"SnapTrade answered {endpoint} with a cash balance without its currency",
                provider=PROVIDER,
                endpoint=endpoint,
            )
    return balances


@snaptrade_call("GET /accounts/{id}/balances")
def get_account_balances(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str
) -> list[dict[str, Any]]:
    balances = body(
        client.account_information.get_user_account_balance(
            account_id=account_id, user_id=user_id, user_secret=user_secret
        ),
        "/accounts/{id}/balances",
        list,
    )
    return _with_currencies(balances, "/accounts/{id}/balances")


@snaptrade_call("GET /accounts/{id}/positions/all")
def get_account_positions(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str
) -> dict[str, Any]:
    """``{"results": [...], "data_freshness": {"as_of": ...}}`` for one account."""
    answer = body(
        client.account_information.get_all_account_positions(
            account_id=account_id, user_id=user_id, user_secret=user_secret
        ),
        "/accounts/{id}/positions/all",
        dict,
    )
    if not isinstance(answer.get("results"), list):
        raise MalformedResponse(
            "SnapTrade positions/all answer has no results list",
            provider=PROVIDER,
            endpoint="/accounts/{id}/positions/all",
        )
    return answer


@snaptrade_call("POST /accounts/{id}/symbols")
def search_account_symbols(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str, substring: str
) -> list[dict[str, Any]]:
    """Universal symbols matching ``substring`` that this account's brokerage supports."""
    symbols = body(
        client.reference_data.symbol_search_user_account(
            account_id=account_id, substring=substring, user_id=user_id, user_secret=user_secret
        ),
        "/accounts/{id}/symbols",
        list,
    )
    return with_ids(symbols, "/accounts/{id}/symbols", "a symbol")


def extract_authorization_id(authorization: Any) -> str | None:
    """An account's ``brokerage_authorization`` is a dict in some answers, a bare id in others."""
    if isinstance(authorization, dict):
        value = authorization.get("id")
        return str(value) if value else None
    if isinstance(authorization, str) and authorization:
        return authorization
    return None


def authorization_id_of(account: dict[str, Any]) -> str | None:
    """An account's brokerage authorization id."""
    return extract_authorization_id(account.get("brokerage_authorization"))


def fetch_snaptrade_account(
    client: SnapTrade, user_id: str, user_secret: str, account: dict[str, Any]
) -> dict[str, Any]:
    """One account's positions (``/positions/all``) and cash (``/balances``)."""
    account_id = str(account.get("id"))
    positions = get_account_positions(client, user_id, user_secret, account_id)
    return {
        "account": account,
        "positions": positions["results"],
        "data_freshness": positions.get("data_freshness"),
        "balances": get_account_balances(client, user_id, user_secret, account_id),
    }


def fetch_snaptrade_holdings(
    user_email: str, client: SnapTrade, *, user_secret: str
) -> dict[str, Any]:
    """Every account with its positions (``/positions/all``) and cash (``/balances``)."""
    accounts = list_user_accounts(client, user_email, user_secret)
    return {
        "accounts": [
            fetch_snaptrade_account(client, user_email, user_secret, account)
            for account in accounts
        ]
    }
