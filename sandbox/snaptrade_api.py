"""The subset of the SnapTrade API the project calls (paths at the root, as in the SDK).

Every request except ``GET /`` is signed the way snaptrade-python-sdk signs it:
query ``clientId`` and ``timestamp`` plus header ``Signature``. Errors use the
body SnapTrade documents for real errors: ``{"detail", "status_code", "code"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import demo
from sandbox.data import (
    ALL_ACCOUNTS,
    CURRENCY_NAMES,
    PRICES_AS_OF,
    PRICES_AS_OF_DATETIME,
    SNAPTRADE_BROKERAGES,
    AccountTemplate,
    Holding,
    Institution,
    stable_uuid,
)
from sandbox.routing import (
    ApiRequest,
    ApiResponse,
    Page,
    Route,
    html_page,
    iso_timestamp,
    retry_after_header,
)
from sandbox.state import StateStore

PROVIDER = "snaptrade"
PREFIX = "/snaptrade"

# SnapTrade rejects a request whose timestamp is more than 5 minutes off.
TIMESTAMP_TOLERANCE_SECONDS = 300
# A trade id from /trade/impact can be placed for 5 minutes.
TRADE_LIFETIME_SECONDS = 300

_INSTRUMENT_KINDS = {
    "equity": "stock",
    "etf": "etf",
    "mutual fund": "mutualfund",
    "money market": "mutualfund",
}
_SECURITY_TYPE_CODES = {"equity": "cs", "etf": "et", "mutual fund": "oef", "money market": "oef"}
_EXCHANGES = {
    "XNAS": ("NASDAQ", "Nasdaq"),
    "XNYS": ("NYSE", "New York Stock Exchange"),
    "ARCX": ("ARCA", "NYSE Arca"),
}
_UNSIGNED_ENDPOINTS = {"snaptrade /"}
_APP_SCOPED_ENDPOINTS = {"snaptrade /", "snaptrade /snapTrade/registerUser"}


@dataclass(frozen=True)
class SnapTradeErrorSpec:
    status: int
    code: str
    detail: str


# Fault name -> SnapTrade's answer. "0000" is SnapTrade's generic code (throttling, ...).
SNAPTRADE_FAULTS: dict[str, SnapTradeErrorSpec] = {
    "1020": SnapTradeErrorSpec(
        403, "1020", "Trading is not enabled for this client. Contact SnapTrade to enable it."
    ),
    "1066": SnapTradeErrorSpec(403, "1066", "You do not have permission to perform this action."),
    "3003": SnapTradeErrorSpec(
        402,
        "3003",
        "Unable to sync with brokerage account because the connection is disabled. "
        "Reconnect it through the connection portal.",
    ),
    "429": SnapTradeErrorSpec(429, "0000", "Request was throttled."),
    "500": SnapTradeErrorSpec(500, "0000", "An unexpected error occurred."),
    "503": SnapTradeErrorSpec(
        503, "0000", "The brokerage is temporarily unavailable. Please try again later."
    ),
}

_BAD_SIGNATURE = SnapTradeErrorSpec(401, "1076", "Unable to verify signature sent")
_BAD_USER = SnapTradeErrorSpec(401, "1083", "Invalid userID or userSecret provided")


def snaptrade_error(spec: SnapTradeErrorSpec, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(
        spec.status,
        {"detail": spec.detail, "status_code": spec.status, "code": spec.code},
        headers or {},
    )


def _error(status: int, code: str, detail: str) -> ApiResponse:
    return snaptrade_error(SnapTradeErrorSpec(status, code, detail))


def request_signature(consumer_key: str, path: str, query: str, content: Any) -> str:
    """SnapTrade's request signature, computed exactly as snaptrade-python-sdk does.

    ``path`` is the API path without the host (the SDK signs ``/accounts`` even
    when its host is ``http://127.0.0.1:PORT/snaptrade``) and ``query`` is the raw
    query string as sent, ``clientId`` and ``timestamp`` included. A request
    without a body, or with ``{}``, signs ``content`` as null.
    """
    canonical = json.dumps(
        {"content": None if content in (None, {}) else content, "path": path, "query": query},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hmac.new(consumer_key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _SnapTradeAnswerError(Exception):
    """Raised inside a handler to answer with a SnapTrade error."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _decimal(value: float) -> str:
    """SnapTrade's decimal strings: no exponent, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _currency(code: str) -> dict[str, Any]:
    return {"id": stable_uuid("currency", code), "code": code, "name": CURRENCY_NAMES[code]}


def _symbol_id(ticker: str) -> str:
    return stable_uuid("symbol", ticker)


def _universe() -> dict[str, Holding]:
    """Every security in the demo data, by universal symbol id."""
    return {_symbol_id(h.ticker): h for a in ALL_ACCOUNTS for h in a.holdings}


def _exchange(mic: str) -> dict[str, Any]:
    code, name = _EXCHANGES[mic]
    return {
        "id": stable_uuid("exchange", mic),
        "code": code,
        "mic_code": mic,
        "name": name,
        "timezone": "America/New_York",
        "start_time": "09:30:00",
        "close_time": "16:00:00",
        "suffix": None,
    }


def _universal_symbol(holding: Holding) -> dict[str, Any]:
    symbol: dict[str, Any] = {
        "id": _symbol_id(holding.ticker),
        "symbol": holding.ticker,
        "raw_symbol": holding.ticker,
        "description": holding.name,
        "currency": _currency(holding.currency),
        "type": {
            "id": stable_uuid("security-type", _SECURITY_TYPE_CODES[holding.kind]),
            "code": _SECURITY_TYPE_CODES[holding.kind],
            "description": holding.kind.title(),
            "is_supported": True,
        },
        "figi_code": None,
        "figi_instrument": None,
        "currencies": [_currency(holding.currency)],
    }
    if holding.mic:
        symbol["exchange"] = _exchange(holding.mic)
    return symbol


def _brokerage(institution: Institution, base_url: str) -> dict[str, Any]:
    return {
        "id": institution.snaptrade_brokerage_id,
        "slug": institution.slug.upper(),
        "name": institution.name,
        "display_name": institution.name,
        "description": f"{institution.name} (emulated)",
        "aws_s3_logo_url": f"{base_url}{PREFIX}/logos/{institution.slug}.png",
        "aws_s3_square_logo_url": None,
        "url": institution.url,
        "enabled": True,
        "maintenance_mode": False,
        "is_degraded": False,
        "allows_trading": True,
        "allows_fractional_units": True,
        "has_reporting": True,
        "is_real_time_connection": False,
        "brokerage_type": {
            "id": stable_uuid("brokerage-type", "traditional"),
            "name": "Traditional Brokerage",
        },
        "exchanges": [],
        "open_url": None,
    }


def _authorization(auth: dict[str, Any], base_url: str) -> dict[str, Any]:
    institution = SNAPTRADE_BROKERAGES[auth["brokerage"]]
    return {
        "id": auth["id"],
        "created_date": auth["created_date"],
        "updated_date": auth["created_date"],
        "brokerage": _brokerage(institution, base_url),
        "name": institution.name,
        "type": auth["type"],
        "disabled": auth["disabled"],
        "disabled_date": auth["disabled_date"],
        "meta": {},
        "is_eligible_for_payout": False,
        "data_freshness_mode": "realtime",
    }


def _sync_status() -> dict[str, Any]:
    return {
        "transactions": {
            "initial_sync_completed": True,
            "last_successful_sync": PRICES_AS_OF,
            "first_transaction_date": "2024-01-02",
        },
        "holdings": {
            "initial_sync_completed": True,
            "last_successful_sync": PRICES_AS_OF_DATETIME,
            "holdings_unavailable": False,
        },
    }


def _account(auth: dict[str, Any], template: AccountTemplate, account_id: str) -> dict[str, Any]:
    institution = SNAPTRADE_BROKERAGES[auth["brokerage"]]
    return {
        "id": account_id,
        "brokerage_authorization": auth["id"],
        "name": f"{institution.name} {template.name}",
        "number": template.number,
        "institution_account_id": template.number,
        "institution_name": institution.name,
        "created_date": auth["created_date"],
        "funding_date": None,
        "opening_date": None,
        "sync_status": _sync_status(),
        "balance": {"total": {"amount": template.total_value_usd(), "currency": "USD"}},
        "status": "open",
        "raw_type": "Margin" if template.subtype == "brokerage" else "IRA",
        "account_category": "INVESTMENT",
        "meta": {
            "type": template.subtype,
            "status": "ACTIVE",
            "institution_name": institution.name,
        },
        "portfolio_group": stable_uuid("portfolio-group", account_id),
        "cash_restrictions": [],
        "is_paper": False,
    }


def _position(holding: Holding) -> dict[str, Any]:
    return {
        "instrument": {
            "kind": _INSTRUMENT_KINDS[holding.kind],
            "id": _symbol_id(holding.ticker),
            "symbol": holding.ticker,
            "raw_symbol": holding.ticker,
            "description": holding.name,
            "currency": holding.currency,
            "exchange": holding.mic,
            "figi_instrument": None,
        },
        "units": _decimal(holding.quantity),
        "price": _decimal(holding.price),
        # SnapTrade's cost_basis is the average price per unit (Plaid's is the total).
        "cost_basis": _decimal(round(holding.cost_basis / holding.quantity, 4)),
        "currency": holding.currency,
        "cash_equivalent": holding.cash_equivalent,
        "tax_lots": [],
    }


@dataclass(frozen=True)
class _OwnedAccount:
    auth: dict[str, Any]
    template: AccountTemplate
    account_id: str


def _accounts_of_user(state: dict[str, Any], user_id: str) -> list[_OwnedAccount]:
    owned = []
    for auth in state["snaptrade"]["authorizations"].values():
        if auth["user_id"] != user_id:
            continue
        for template in SNAPTRADE_BROKERAGES[auth["brokerage"]].accounts:
            owned.append(_OwnedAccount(auth, template, auth["account_ids"][template.key]))
    return owned


class SnapTradeApi:
    """SnapTrade's API over the shared state."""

    provider = PROVIDER
    prefix = PREFIX

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.routes: list[Route] = [
            self._route("GET", "/", self.api_status, "online"),
            self._route("POST", "/snapTrade/registerUser", self.register_user, "userSecret"),
            self._route("POST", "/snapTrade/login", self.login, "redirectURI"),
            self._route("GET", "/accounts", self.list_accounts, "id"),
            self._route("GET", "/accounts/{accountId}/balances", self.balances, "currency"),
            self._route("GET", "/accounts/{accountId}/positions/all", self.positions, "results"),
            self._route("GET", "/authorizations", self.list_authorizations, "id"),
            self._route(
                "GET", "/authorizations/{authorizationId}", self.authorization_detail, "id"
            ),
            # Trading (used by the trading feature): symbol search, order impact, place.
            self._route("POST", "/accounts/{accountId}/symbols", self.symbol_search, "id"),
            self._route("POST", "/trade/impact", self.order_impact, "trade"),
            self._route("POST", "/trade/{tradeId}", self.place_order, "brokerage_order_id"),
        ]
        self.pages: list[Page] = [
            Page(("GET", "POST"), "/portal/{sessionId}", self.portal_page),
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
            except _SnapTradeAnswerError as failure:
                return failure.response

        return Route(method, template, guarded, required_field)

    # --- cross-cutting: signature, user credentials, subjects, faults ---------------

    def authenticate(self, request: ApiRequest) -> ApiResponse | None:
        if request.endpoint in _UNSIGNED_ENDPOINTS:
            return None
        if request.body is not None and not request.body_is_json:
            return _error(400, "0000", "JSON parse error")
        if request.args.get("clientId") != demo.SNAPTRADE_CLIENT_ID:
            return snaptrade_error(
                SnapTradeErrorSpec(401, _BAD_SIGNATURE.code, "Invalid clientId provided")
            )
        try:
            timestamp = int(request.args.get("timestamp", ""))
        except ValueError:
            timestamp = None
        if timestamp is None or abs(request.now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
            return snaptrade_error(
                SnapTradeErrorSpec(
                    401, _BAD_SIGNATURE.code, "Timestamp is missing or more than 5 minutes off"
                )
            )
        query = "&".join(
            part for part in request.raw_query.split("&") if not part.startswith("Signature=")
        )
        expected = request_signature(demo.SNAPTRADE_CONSUMER_KEY, request.path, query, request.body)
        if not hmac.compare_digest(request.headers.get("Signature", ""), expected):
            return snaptrade_error(_BAD_SIGNATURE)
        if request.endpoint in _APP_SCOPED_ENDPOINTS:
            return None
        user = self.store.read()["snaptrade"]["users"].get(request.args.get("userId", ""))
        if user is None or not hmac.compare_digest(
            user["user_secret"], request.args.get("userSecret", "")
        ):
            return snaptrade_error(_BAD_USER)
        return None

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

    # --- helpers ------------------------------------------------------------------------

    def _owned_account(self, state: dict[str, Any], request: ApiRequest) -> _OwnedAccount:
        account_id = request.path_params.get("accountId") or request.json_object().get("account_id")
        for owned in _accounts_of_user(state, request.args["userId"]):
            if owned.account_id == account_id:
                return owned
        raise _SnapTradeAnswerError(_error(404, "0000", f"Account {account_id} not found"))

    @staticmethod
    def _require_enabled(auth: dict[str, Any]) -> None:
        if auth["disabled"]:
            raise _SnapTradeAnswerError(snaptrade_error(SNAPTRADE_FAULTS["3003"]))

    @staticmethod
    def _require_trading(auth: dict[str, Any]) -> None:
        SnapTradeApi._require_enabled(auth)
        if auth["type"] != "trade":
            raise _SnapTradeAnswerError(snaptrade_error(SNAPTRADE_FAULTS["1066"]))
        if not auth["trading_allowed"]:
            raise _SnapTradeAnswerError(snaptrade_error(SNAPTRADE_FAULTS["1020"]))

    # --- operations ---------------------------------------------------------------------

    def api_status(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(
            200, {"version": 151, "timestamp": iso_timestamp(request.now), "online": True}
        )

    def register_user(self, request: ApiRequest) -> ApiResponse:
        user_id = request.json_object().get("userId")
        if not isinstance(user_id, str) or not user_id:
            return _error(400, "0000", "userId is required")
        with self.store.transaction() as state:
            users = state["snaptrade"]["users"]
            if user_id in users:
                return _error(400, "1010", "User already exist")
            secret = str(uuid.uuid4())
            users[user_id] = {"user_secret": secret, "created_at": iso_timestamp(request.now)}
        return ApiResponse(200, {"userId": user_id, "userSecret": secret})

    def login(self, request: ApiRequest) -> ApiResponse:
        body = request.json_object()
        user_id = request.args["userId"]
        reconnect = body.get("reconnect")
        session_id = str(uuid.uuid4())
        with self.store.transaction() as state:
            if reconnect:
                auth = state["snaptrade"]["authorizations"].get(reconnect)
                if auth is None or auth["user_id"] != user_id:
                    return _error(404, "0000", f"Connection {reconnect} not found")
            state["snaptrade"]["portal_sessions"][session_id] = {
                "user_id": user_id,
                "broker": body.get("broker"),
                "connection_type": body.get("connectionType") or "read",
                "reconnect": reconnect,
                "custom_redirect": body.get("customRedirect"),
                "created_at": request.now,
            }
        return ApiResponse(
            200,
            {
                "redirectURI": f"{request.base_url}{PREFIX}/portal/{session_id}",
                "sessionId": session_id,
            },
        )

    def list_accounts(self, request: ApiRequest) -> ApiResponse:
        state = self.store.read()
        return ApiResponse(
            200,
            [
                _account(o.auth, o.template, o.account_id)
                for o in _accounts_of_user(state, request.args["userId"])
            ],
        )

    def balances(self, request: ApiRequest) -> ApiResponse:
        owned = self._owned_account(self.store.read(), request)
        self._require_enabled(owned.auth)
        return ApiResponse(
            200,
            [
                {"currency": _currency(currency), "cash": amount, "buying_power": amount}
                for currency, amount in owned.template.cash
            ],
        )

    def positions(self, request: ApiRequest) -> ApiResponse:
        owned = self._owned_account(self.store.read(), request)
        self._require_enabled(owned.auth)
        return ApiResponse(
            200,
            {
                "results": [_position(h) for h in owned.template.holdings],
                "data_freshness": {"as_of": iso_timestamp(request.now)},
            },
        )

    def list_authorizations(self, request: ApiRequest) -> ApiResponse:
        state = self.store.read()
        user_id = request.args["userId"]
        return ApiResponse(
            200,
            [
                _authorization(auth, request.base_url)
                for auth in state["snaptrade"]["authorizations"].values()
                if auth["user_id"] == user_id
            ],
        )

    def authorization_detail(self, request: ApiRequest) -> ApiResponse:
        auth_id = request.path_params["authorizationId"]
        auth = self.store.read()["snaptrade"]["authorizations"].get(auth_id)
        if auth is None or auth["user_id"] != request.args["userId"]:
            return _error(404, "0000", f"Connection {auth_id} not found")
        return ApiResponse(200, _authorization(auth, request.base_url))

    def symbol_search(self, request: ApiRequest) -> ApiResponse:
        owned = self._owned_account(self.store.read(), request)
        # Account-scoped symbol search is a trading endpoint: an app without trading
        # permission gets the same 403 code 1020 as on order impact and placement.
        self._require_trading(owned.auth)
        needle = str(request.json_object().get("substring") or "").strip().lower()
        matches = [
            _universal_symbol(h)
            for h in _universe().values()
            if needle and (needle in h.ticker.lower() or needle in h.name.lower())
        ]
        return ApiResponse(200, matches)

    def order_impact(self, request: ApiRequest) -> ApiResponse:
        form = request.json_object()
        missing = [
            name
            for name in (
                "account_id",
                "action",
                "universal_symbol_id",
                "order_type",
                "time_in_force",
            )
            if not form.get(name)
        ]
        if missing:
            return _error(400, "0000", "Missing required fields: " + ", ".join(missing))
        holding = _universe().get(form["universal_symbol_id"])
        if holding is None:
            return _error(400, "0000", "Unknown universal_symbol_id")
        units, price = form.get("units"), form.get("price")
        if not isinstance(units, int | float) or units <= 0:
            return _error(400, "0000", "units must be a positive number")
        if form["order_type"] in ("Limit", "StopLimit") and not isinstance(price, int | float):
            return _error(400, "0000", "price is required for limit orders")
        trade_id = str(uuid.uuid4())
        with self.store.transaction() as state:
            owned = self._owned_account(state, request)
            self._require_trading(owned.auth)
            state["snaptrade"]["trades"][trade_id] = {
                "user_id": request.args["userId"],
                "account_id": owned.account_id,
                "universal_symbol_id": form["universal_symbol_id"],
                "action": form["action"],
                "order_type": form["order_type"],
                "time_in_force": form["time_in_force"],
                "units": units,
                "price": price,
                "created_at": request.now,
            }
        fill_price = price if isinstance(price, int | float) else holding.price
        cash = dict(owned.template.cash).get(holding.currency, 0.0)
        signed_cost = units * fill_price * (1 if form["action"] == "BUY" else -1)
        remaining = round(cash - signed_cost, 2)
        currency = _currency(holding.currency)
        return ApiResponse(
            200,
            {
                "trade": {
                    "id": trade_id,
                    "account": owned.account_id,
                    "order_type": form["order_type"],
                    "time_in_force": form["time_in_force"],
                    "symbol": {
                        "universal_symbol_id": form["universal_symbol_id"],
                        "currency": currency,
                        "brokerage_symbol_id": stable_uuid(
                            "brokerage-symbol", owned.auth["brokerage"], holding.ticker
                        ),
                    },
                    "action": form["action"],
                    "units": units,
                    "price": price,
                },
                "trade_impacts": [
                    {
                        "account": owned.account_id,
                        "currency": currency["id"],
                        "remaining_cash": remaining,
                        "estimated_commission": 0.0,
                        "forex_fees": 0.0,
                    }
                ],
                "combined_remaining_balance": {
                    "account": {
                        "id": owned.account_id,
                        "name": owned.template.name,
                        "number": owned.template.number,
                        "institution_account_id": owned.template.number,
                        "sync_status": _sync_status(),
                    },
                    "currency": currency,
                    "cash": remaining,
                },
            },
        )

    def place_order(self, request: ApiRequest) -> ApiResponse:
        trade_id = request.path_params["tradeId"]
        with self.store.transaction() as state:
            trade = state["snaptrade"]["trades"].get(trade_id)
            if trade is None or trade["user_id"] != request.args["userId"]:
                return _error(400, "0000", f"Trade {trade_id} not found")
            # A trade id is used once, whether it is placed or found expired.
            del state["snaptrade"]["trades"][trade_id]
            if request.now - trade["created_at"] > TRADE_LIFETIME_SECONDS:
                return _error(
                    400, "0000", f"Trade {trade_id} has expired; request a new order impact"
                )
            auth = next(
                o.auth
                for o in _accounts_of_user(state, trade["user_id"])
                if o.account_id == trade["account_id"]
            )
            self._require_trading(auth)
            holding = _universe()[trade["universal_symbol_id"]]
            fill_price = trade["price"] if trade["price"] is not None else holding.price
            executed = trade["order_type"] == "Market"
            placed_at = iso_timestamp(request.now)
            order = {
                "brokerage_order_id": str(uuid.uuid4()),
                "status": "EXECUTED" if executed else "ACCEPTED",
                "universal_symbol": _universal_symbol(holding),
                "option_symbol": None,
                "action": trade["action"],
                "total_quantity": _decimal(trade["units"]),
                "open_quantity": "0" if executed else _decimal(trade["units"]),
                "canceled_quantity": "0",
                "filled_quantity": _decimal(trade["units"]) if executed else "0",
                "execution_price": _decimal(fill_price) if executed else None,
                "limit_price": _decimal(trade["price"]) if trade["price"] is not None else None,
                "stop_price": None,
                "order_type": trade["order_type"],
                "time_in_force": trade["time_in_force"],
                "time_placed": placed_at,
                "time_updated": placed_at,
                "time_executed": placed_at if executed else None,
                "expiry_date": None,
                "child_brokerage_order_ids": None,
            }
            # Holdings stay as seeded: the order is recorded, not applied to positions.
            state["snaptrade"]["orders"].append(order | {"account_id": trade["account_id"]})
        return ApiResponse(200, order)

    # --- connection portal -----------------------------------------------------------

    def complete_connection(self, session_id: str, brokerage_slug: str, now: float) -> str:
        """Act as the person finishing the connection portal; returns the authorization id.

        With ``reconnect`` the existing connection is re-enabled and takes the
        session's connection type (how a read connection becomes a trade one);
        otherwise a new connection with new account ids is made.
        """
        if brokerage_slug not in SNAPTRADE_BROKERAGES:
            raise ValueError(f"no SnapTrade brokerage {brokerage_slug!r}")
        with self.store.transaction() as state:
            session = state["snaptrade"]["portal_sessions"].pop(session_id, None)
            if session is None:
                raise ValueError(f"unknown or used portal session {session_id!r}")
            connection_type = "read" if session["connection_type"] == "read" else "trade"
            authorizations = state["snaptrade"]["authorizations"]
            if session["reconnect"]:
                auth = authorizations[session["reconnect"]]
                auth.update(type=connection_type, disabled=False, disabled_date=None)
                return auth["id"]
            auth_id = str(uuid.uuid4())
            institution = SNAPTRADE_BROKERAGES[brokerage_slug]
            authorizations[auth_id] = {
                "id": auth_id,
                "user_id": session["user_id"],
                "brokerage": brokerage_slug,
                "type": connection_type,
                "created_date": iso_timestamp(now),
                "disabled": False,
                "disabled_date": None,
                "trading_allowed": True,
                "account_ids": {a.key: str(uuid.uuid4()) for a in institution.accounts},
            }
            return auth_id

    def set_connection_disabled(self, authorization_id: str, disabled: bool, now: float) -> None:
        with self.store.transaction() as state:
            auth = _authorization_or_error(state, authorization_id)
            auth["disabled"] = disabled
            auth["disabled_date"] = iso_timestamp(now) if disabled else None

    def set_trading_permission(self, authorization_id: str, allowed: bool) -> None:
        with self.store.transaction() as state:
            _authorization_or_error(state, authorization_id)["trading_allowed"] = allowed

    def portal_page(self, request: ApiRequest) -> ApiResponse:
        session_id = request.path_params["sessionId"]
        session = self.store.read()["snaptrade"]["portal_sessions"].get(session_id)
        if session is None:
            return html_page(404, "Session expired", "<p>This connection link has expired.</p>")
        if request.method == "POST":
            slug = request.form.get("brokerage", "")
            if slug not in SNAPTRADE_BROKERAGES:
                return html_page(400, "Unknown brokerage", "<p>Pick a brokerage.</p>")
            self.complete_connection(session_id, slug, request.now)
            if session["custom_redirect"]:
                return ApiResponse(303, headers={"Location": session["custom_redirect"]}, raw=b"")
            return html_page(
                200, "Connected", "<p>Brokerage connected. You can close this tab.</p>"
            )
        choices = [
            i
            for i in SNAPTRADE_BROKERAGES.values()
            if not session["broker"] or i.slug.upper() == str(session["broker"]).upper()
        ]
        buttons = "".join(
            f"<button name='brokerage' value='{html.escape(i.slug)}'>{html.escape(i.name)}</button>"
            for i in choices
        )
        action = html.escape(f"{PREFIX}/portal/{session_id}")
        return html_page(
            200,
            "SnapTrade connection portal (emulator)",
            f"<h1>Connect a brokerage ({html.escape(session['connection_type'])})</h1>"
            f"<form method='post' action='{action}'>{buttons}</form>",
        )


def _authorization_or_error(state: dict[str, Any], authorization_id: str) -> dict[str, Any]:
    auth = state["snaptrade"]["authorizations"].get(authorization_id)
    if auth is None:
        raise KeyError(f"no SnapTrade connection {authorization_id!r}")
    return auth
