"""SnapTrade as a broker: symbol search, order preview (impact) and order placement.

SDK quirks handled here: ``units`` and ``price`` must be Python floats (ints and
Decimals are rejected before sending) and ids must be UUIDs.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInput, MalformedResponse
from core.numbers import finite_number
from core.redaction import register_secret
from providers.snaptrade.accounts import (
    get_account_positions,
    list_user_accounts,
    search_account_symbols,
)
from providers.snaptrade.client import body, require_snaptrade_client, snaptrade_call
from providers.snaptrade.connections import get_authorization
from providers.snaptrade.errors import map_snaptrade_error

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade


@snaptrade_call("GET /accounts/{id}/orders")
def _open_orders(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str
) -> list[dict[str, Any]]:
    response = client.account_information.get_user_account_orders(
        account_id=account_id, user_id=user_id, user_secret=user_secret, state="open"
    )
    return [_open_order(order) for order in body(response, ORDERS_ENDPOINT, list)]


ORDERS_ENDPOINT = "/accounts/{id}/orders"


def _open_order(order: Any) -> dict[str, Any]:
    """One open order as the sell check needs it; an order it cannot read is refused whole.

    Guessing would be unsafe either way: an unreadable open SELL could hold back units
    that a new SELL would then sell twice.
    """
    symbol = order.get("universal_symbol") if isinstance(order, dict) else None
    symbol = symbol if isinstance(symbol, dict) else {}
    # SnapTrade sends quantities as decimal strings.
    open_units = finite_number(order.get("open_quantity")) if isinstance(order, dict) else None
    if (
        not isinstance(order, dict)
        or not order.get("brokerage_order_id")
        or not isinstance(order.get("action"), str)
        or not order["action"]
        or open_units is None
        or open_units < 0
        or not (symbol.get("id") or symbol.get("symbol"))
    ):
        raise MalformedResponse(
            "SnapTrade answered /accounts/{id}/orders with an open order Brokerage Hub cannot "
            "read (no order id, action, symbol or open quantity), so the units it holds back "
            "are unknown",
            provider="snaptrade",
            endpoint=ORDERS_ENDPOINT,
        )
    return {
        "brokerage_order_id": str(order["brokerage_order_id"]),
        "action": str(order["action"]).upper(),
        "universal_symbol_id": str(symbol.get("id") or ""),
        "symbol": str(symbol.get("symbol") or "").upper(),
        "open_units": open_units,
    }


@snaptrade_call("POST /trade/impact")
def _order_impact(
    client: SnapTrade, user_id: str, user_secret: str, order: dict[str, Any]
) -> dict[str, Any]:
    response = client.trading.get_order_impact(user_id=user_id, user_secret=user_secret, **order)
    return body(response, "/trade/impact", dict)


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not a SnapTrade id (a UUID)") from None


def _finite_float(value: float, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{what} must be a finite number, not {value!r}")
    return number


class SnapTradeBrokerAdapter:
    """One user's SnapTrade trading calls; returns SnapTrade's JSON as plain dicts."""

    def __init__(self, client: SnapTrade, user_id: str, user_secret: str) -> None:
        register_secret(user_secret)
        self._client = require_snaptrade_client(client)
        self._user_id = user_id
        self._user_secret = user_secret

    def __repr__(self) -> str:  # never show the user secret
        return f"SnapTradeBrokerAdapter(user_id={self._user_id!r})"

    def list_accounts(self) -> list[dict[str, Any]]:
        return list_user_accounts(self._client, self._user_id, self._user_secret)

    def authorization(self, authorization_id: str) -> dict[str, Any]:
        return get_authorization(
            self._client,
            self._user_id,
            self._user_secret,
            _uuid(authorization_id, "authorization id"),
        )

    def account_positions(self, account_id: str) -> tuple[list[dict[str, Any]], str | None]:
        """The account's positions, and the time SnapTrade says the data is as of (if it says)."""
        answer = get_account_positions(
            self._client, self._user_id, self._user_secret, _uuid(account_id, "account id")
        )
        freshness = answer.get("data_freshness")
        as_of = freshness.get("as_of") if isinstance(freshness, dict) else None
        return [p for p in answer["results"] if isinstance(p, dict)], as_of

    def open_orders(self, account_id: str) -> list[dict[str, Any]]:
        """The account's orders not filled yet (SELLs among them hold units back)."""
        return _open_orders(
            self._client, self._user_id, self._user_secret, _uuid(account_id, "account id")
        )

    def search_symbol(self, account_id: str, ticker: str) -> list[dict[str, Any]]:
        return search_account_symbols(
            self._client,
            self._user_id,
            self._user_secret,
            _uuid(account_id, "account id"),
            ticker,
        )

    def preview_order(
        self,
        *,
        account_id: str,
        action: str,
        universal_symbol_id: str,
        order_type: str,
        time_in_force: str,
        units: float,
        price: float | None = None,
    ) -> dict[str, Any]:
        """SnapTrade ``get_order_impact``: changes nothing at the broker; trade id valid 5 min."""
        kwargs: dict[str, Any] = {
            "account_id": _uuid(account_id, "account id"),
            "action": action,
            "universal_symbol_id": _uuid(universal_symbol_id, "universal symbol id"),
            "order_type": order_type,
            "time_in_force": time_in_force,
            "units": _finite_float(units, "units"),
        }
        if price is not None:
            kwargs["price"] = _finite_float(price, "price")

        return _order_impact(self._client, self._user_id, self._user_secret, kwargs)

    def place_order(self, trade_id: str) -> dict[str, Any]:
        """SnapTrade ``place_order`` for a previewed trade id. Never retried.

        A retry after a timeout could place a second order; the caller records
        an unanswered placement as unknown instead.
        """
        trade_id = _uuid(trade_id, "trade id")
        try:
            response = self._client.trading.place_order(
                trade_id=trade_id,
                wait_to_confirm=True,
                user_id=self._user_id,
                user_secret=self._user_secret,
            )
            return body(response, "/trade/{tradeId}", dict)
        except Exception as exc:
            raise map_snaptrade_error(exc, "POST /trade/{tradeId}") from exc
