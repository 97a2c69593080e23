"""Who owns which SnapTrade account, and what a connection may do right now.

The account and trading operations call these checks; each answers with
SnapTrade's own error (404, 3003 disabled, 1066 read-only, 1020 no trading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.data import SNAPTRADE_BROKERAGES, AccountTemplate
from sandbox.overrides import current_account
from sandbox.routing import ApiRequest
from sandbox.snaptrade.common import (
    SNAPTRADE_FAULTS,
    SnapTradeAnswerError,
    error,
    snaptrade_error,
)


@dataclass(frozen=True)
class OwnedAccount:
    auth: dict[str, Any]
    template: AccountTemplate
    account_id: str


def accounts_of_user(state: dict[str, Any], user_id: str) -> list[OwnedAccount]:
    owned = []
    for auth in state["snaptrade"]["authorizations"].values():
        if auth["user_id"] != user_id:
            continue
        for template in SNAPTRADE_BROKERAGES[auth["brokerage"]].accounts:
            account_id = auth["account_ids"][template.key]
            # Every account read and trade check goes through here: the holdings
            # are the state's, overrides applied, never the bare seeded ones.
            owned.append(OwnedAccount(auth, current_account(state, template), account_id))
    return owned


def owned_account(state: dict[str, Any], request: ApiRequest) -> OwnedAccount:
    """The calling user's account named in the path or body, else a 404 answer."""
    account_id = request.path_params.get("accountId") or request.json_object().get("account_id")
    for owned in accounts_of_user(state, request.args["userId"]):
        if owned.account_id == account_id:
            return owned
    raise SnapTradeAnswerError(error(404, "0000", f"Account {account_id} not found"))


def require_enabled(auth: dict[str, Any]) -> None:
    if auth["disabled"]:
        raise SnapTradeAnswerError(snaptrade_error(SNAPTRADE_FAULTS["3003"]))


def require_trading(auth: dict[str, Any]) -> None:
    require_enabled(auth)
    if auth["type"] != "trade":
        raise SnapTradeAnswerError(snaptrade_error(SNAPTRADE_FAULTS["1066"]))
    if not auth["trading_allowed"]:
        raise SnapTradeAnswerError(snaptrade_error(SNAPTRADE_FAULTS["1020"]))


def authorization_or_error(state: dict[str, Any], authorization_id: str) -> dict[str, Any]:
    """A stored connection; KeyError (a 400 at the admin switches) when there is none."""
    auth = state["snaptrade"]["authorizations"].get(authorization_id)
    if auth is None:
        raise KeyError(f"no SnapTrade connection {authorization_id!r}")
    return auth
