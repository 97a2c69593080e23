"""The SnapTrade API as the server mounts it: its route table and what the server
asks of every provider (credentials check, fault subject, fault answers).
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.routing import ApiRequest, ApiResponse, Page, Route, iso_timestamp, retry_after_header
from sandbox.snaptrade.accounts import AccountEndpoints
from sandbox.snaptrade.activities import ActivityEndpoints
from sandbox.snaptrade.auth import Credentials
from sandbox.snaptrade.common import (
    PREFIX,
    PROVIDER,
    SNAPTRADE_FAULTS,
    SnapTradeAnswerError,
    SnapTradeErrorSpec,
    snaptrade_error,
)
from sandbox.snaptrade.connections import ConnectionEndpoints
from sandbox.snaptrade.trading import TradingEndpoints
from sandbox.snaptrade.webhooks import SnapTradeWebhooks
from sandbox.state import StateStore


class SnapTradeApi:
    """SnapTrade's API over the shared state."""

    provider = PROVIDER
    prefix = PREFIX

    def __init__(self, store: StateStore) -> None:
        self.store = store
        # Builds and queues SnapTrade's webhooks; holds the dashboard's webhook URL.
        self.webhooks = webhooks = SnapTradeWebhooks(store)
        self._credentials = credentials = Credentials(store, webhooks)
        self._connections = connections = ConnectionEndpoints(store, webhooks)
        accounts = AccountEndpoints(store)
        trading = TradingEndpoints(store)
        activities = ActivityEndpoints(store)
        self.routes: list[Route] = [
            self._route("GET", "/", self.api_status, "online"),
            self._route("POST", "/snapTrade/registerUser", credentials.register_user, "userSecret"),
            self._route("POST", "/snapTrade/login", connections.login, "redirectURI"),
            self._route("GET", "/accounts", accounts.list_accounts, "id"),
            self._route("GET", "/accounts/{accountId}/balances", accounts.balances, "currency"),
            self._route(
                "GET", "/accounts/{accountId}/positions/all", accounts.positions, "results"
            ),
            self._route("GET", "/accounts/{accountId}/activities", activities.activities, "data"),
            self._route("GET", "/authorizations", accounts.list_authorizations, "id"),
            self._route(
                "GET", "/authorizations/{authorizationId}", accounts.authorization_detail, "id"
            ),
            # Trading (used by the trading feature): symbol search, order impact, place.
            self._route("POST", "/accounts/{accountId}/symbols", trading.symbol_search, "id"),
            self._route(
                "GET", "/accounts/{accountId}/orders", trading.account_orders, "brokerage_order_id"
            ),
            self._route("POST", "/trade/impact", trading.order_impact, "trade"),
            self._route("POST", "/trade/{tradeId}", trading.place_order, "brokerage_order_id"),
        ]
        self.pages: list[Page] = [
            Page(("GET", "POST"), "/portal/{sessionId}", connections.portal_page),
        ]

    def _route(
        self,
        method: str,
        template: str,
        handler: Callable[[ApiRequest], ApiResponse],
        required_field: str,
    ) -> Route:
        def guarded(request: ApiRequest) -> ApiResponse:
            try:
                return handler(request)
            except SnapTradeAnswerError as failure:
                return failure.response

        return Route(method, template, guarded, required_field)

    def api_status(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(
            200, {"version": 151, "timestamp": iso_timestamp(request.now), "online": True}
        )

    # --- the connection switches the emulator's controls drive ------------------------

    def complete_connection(self, session_id: str, brokerage_slug: str, now: float) -> str:
        """Act as the person finishing the portal; see :class:`ConnectionEndpoints`."""
        return self._connections.complete_connection(session_id, brokerage_slug, now)

    def set_connection_disabled(self, authorization_id: str, disabled: bool, now: float) -> None:
        self._connections.set_connection_disabled(authorization_id, disabled, now)

    def set_trading_permission(self, authorization_id: str, allowed: bool) -> None:
        self._connections.set_trading_permission(authorization_id, allowed)

    # --- cross-cutting: signature, user credentials, subjects, faults ---------------

    def authenticate(self, request: ApiRequest) -> ApiResponse | None:
        return self._credentials.authenticate(request)

    def subject_of(self, request: ApiRequest) -> str | None:
        params = request.path_params
        subject = params.get("accountId") or params.get("authorizationId") or params.get("tradeId")
        if subject is None and isinstance(request.body, dict):
            subject = request.body.get("account_id")
        return subject if isinstance(subject, str) else None

    def fault_response(
        self, fault: str, request: ApiRequest, retry_after: float | None
    ) -> ApiResponse:
        spec = SNAPTRADE_FAULTS[fault]
        if fault != "429":
            return snaptrade_error(spec)
        seconds = retry_after_header(1 if retry_after is None else retry_after)
        return snaptrade_error(
            SnapTradeErrorSpec(
                429, spec.code, f"Request was throttled. Expected available in {seconds} seconds."
            ),
            {"Retry-After": seconds},
        )
