"""SnapTrade as a broker: symbol search, order preview and order placement.

``SnapTradeBrokerAdapter`` is what the trading service talks to; like
``snaptrade_loader`` it maps SnapTrade's exceptions to ``services.errors``
(through :func:`snaptrade_loader.map_snaptrade_error`), and
:func:`_map_snaptrade_trading_error` turns a trading failure into a message a
person can act on (1020, 1066, 3003, 429, 410, an expired trade).

SDK quirks handled here: ``units`` and ``price`` must be Python floats (ints and
Decimals are rejected before sending) and ids must be UUIDs.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from services.errors import (
    BrokerageHubError,
    ConnectionDisabled,
    InvalidInput,
    ProviderError,
    ProviderRejected,
    RateLimited,
    TradingNotPermitted,
)

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

PROVIDER = "snaptrade"

TRADING_1020_MESSAGE = (
    "SnapTrade trading permissions not enabled for {brokerage}. Error code 1020 — contact "
    "SnapTrade support to enable app-level trading."
)
# Every SnapTrade trading failure that gets its own message (the tests hold this list too).
MAPPED_TRADING_FAILURES = ("1020", "1066", "3003", "429", "410", "expired_trade")


def _extract_authorization_id(authorization: Any) -> str | None:
    """An account's ``brokerage_authorization`` is a dict in some answers, a bare id in others."""
    if isinstance(authorization, dict):
        value = authorization.get("id")
        return str(value) if value else None
    if isinstance(authorization, str) and authorization:
        return authorization
    return None


# --- trading error messages -------------------------------------------------------------


def _reconnect_hint(authorization_id: str | None) -> str:
    target = f"reconnect='{authorization_id or '<authorization id>'}'"
    return (
        "through the SnapTrade connection portal (Brokerage Hub's SnapTrade page, or "
        f"login_snaptrade_user(client, user_id, user_secret, connection_type='trade', {target}) "
        "from the REPL)"
    )


def _is_expired_trade(error: ProviderError) -> bool:
    return error.status in (400, 404, 410) and "expired" in error.message.lower()


def _map_snaptrade_trading_error(
    exception: BaseException,
    brokerage: str = "this brokerage",
    *,
    authorization_id: str | None = None,
    endpoint: str = "trading",
) -> BrokerageHubError:
    """A trading failure as an error whose message says what happened and what to do.

    Takes a SnapTrade SDK exception or an already mapped ``ProviderError``; the
    code is read from ``code`` or ``default_code`` of SnapTrade's error body.
    """
    from snaptrade_loader import map_snaptrade_error

    if isinstance(exception, BrokerageHubError) and not isinstance(exception, ProviderError):
        return exception
    error = (
        exception
        if isinstance(exception, ProviderError)
        else map_snaptrade_error(exception, endpoint)
    )
    details: dict[str, Any] = {
        "provider": PROVIDER,
        "status": error.status,
        "code": error.code,
        "endpoint": error.endpoint,
    }
    if error.code == "1020":
        return TradingNotPermitted(TRADING_1020_MESSAGE.format(brokerage=brokerage), **details)
    if error.code == "1066":
        return TradingNotPermitted(
            f"SnapTrade refused trading through the {brokerage} connection: no permission "
            "(error code 1066). A read-only connection cannot trade: reconnect it with "
            f"trading access {_reconnect_hint(authorization_id)}.",
            **details,
        )
    if error.code == "3003" or error.status == 402 or isinstance(error, ConnectionDisabled):
        return ConnectionDisabled(
            f"The {brokerage} connection is disabled at SnapTrade (error code 3003): "
            f"reconnect it {_reconnect_hint(authorization_id)}, then try again.",
            **details,
        )
    if error.status == 429 or isinstance(error, RateLimited):
        wait = (
            f"retry after {math.ceil(error.retry_after)} seconds"
            if error.retry_after is not None
            else "retry in a minute"
        )
        return RateLimited(
            f"SnapTrade is throttling requests (HTTP 429) for {brokerage}: {wait}.",
            retry_after=error.retry_after,
            **details,
        )
    if error.status == 410:
        return ProviderRejected(
            f"SnapTrade has retired the endpoint {error.endpoint} (HTTP 410 Gone): Brokerage "
            "Hub must move to its replacement. Nothing was traded.",
            **details,
        )
    if _is_expired_trade(error):
        return ProviderRejected(
            "The previewed trade expired at SnapTrade (a trade id is valid for 5 minutes): "
            "preview the order again. Nothing was placed.",
            **details,
        )
    message = (
        f"SnapTrade {endpoint} for {brokerage} failed (HTTP {error.status}, code {error.code})"
    )
    if error.message:
        message = f"{message}: {error.message}"
    return type(error)(message, retry_after=error.retry_after, **details)


# --- the adapter --------------------------------------------------------------------------


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
        self._client = client
        self._user_id = user_id
        self._user_secret = user_secret

    def __repr__(self) -> str:  # never show the user secret
        return f"SnapTradeBrokerAdapter(user_id={self._user_id!r})"

    def list_accounts(self) -> list[dict[str, Any]]:
        from snaptrade_loader import _list_user_accounts_with_retry

        return _list_user_accounts_with_retry(self._client, self._user_id, self._user_secret)

    def authorization(self, authorization_id: str) -> dict[str, Any]:
        from snaptrade_loader import _detail_brokerage_authorization_with_retry

        return _detail_brokerage_authorization_with_retry(
            self._client,
            self._user_id,
            self._user_secret,
            _uuid(authorization_id, "authorization id"),
        )

    def account_positions(self, account_id: str) -> list[dict[str, Any]]:
        from snaptrade_loader import _get_all_account_positions_with_retry

        body = _get_all_account_positions_with_retry(
            self._client, self._user_id, self._user_secret, _uuid(account_id, "account id")
        )
        return [p for p in body["results"] if isinstance(p, dict)]

    def search_symbol(self, account_id: str, ticker: str) -> list[dict[str, Any]]:
        from snaptrade_loader import _symbol_search_user_account_with_retry

        return _symbol_search_user_account_with_retry(
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
        from snaptrade_loader import _body, with_snaptrade_retry

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

        @with_snaptrade_retry("POST /trade/impact")
        def call() -> dict[str, Any]:
            response = self._client.trading.get_order_impact(
                user_id=self._user_id, user_secret=self._user_secret, **kwargs
            )
            return _body(response, "/trade/impact", dict)

        return call()

    def place_order(self, trade_id: str) -> dict[str, Any]:
        """SnapTrade ``place_order`` for a previewed trade id. Never retried.

        A retry after a timeout could place a second order; the caller records
        an unanswered placement as unknown instead.
        """
        from snaptrade_loader import _body, map_snaptrade_error

        trade_id = _uuid(trade_id, "trade id")
        try:
            response = self._client.trading.place_order(
                trade_id=trade_id,
                wait_to_confirm=True,
                user_id=self._user_id,
                user_secret=self._user_secret,
            )
            return _body(response, "/trade/{tradeId}", dict)
        except Exception as exc:
            raise map_snaptrade_error(exc, "POST /trade/{tradeId}") from exc
