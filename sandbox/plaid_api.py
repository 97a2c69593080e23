"""The subset of the Plaid API (version 2020-09-14) the project calls.

Every operation is ``POST <path>`` with a JSON body. Responses carry every field
plaid-python 46 requires (it raises TypeError on a missing one), nullable ones
as null, numbers as JSON numbers. Errors use Plaid's PlaidError body.
"""

from __future__ import annotations

import html
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import demo
from sandbox.data import (
    PLAID_INSTITUTIONS,
    PRICES_AS_OF,
    USD_PER_UNIT,
    AccountTemplate,
    Holding,
    Institution,
    stable_plaid_id,
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

PROVIDER = "plaid"
PREFIX = "/plaid"

LINK_TOKEN_LIFETIME_SECONDS = 4 * 60 * 60  # Plaid's default link_token lifetime

_SECURITY_SUBTYPES = {
    "equity": "common stock",
    "etf": "etf",
    "mutual fund": "mutual fund",
    "money market": "money market",
}

# Plaid reports rate limits with an endpoint-specific error_code under
# error_type RATE_LIMIT_EXCEEDED (see Plaid's "Rate Limit Exceeded errors").
_RATE_LIMIT_CODES = {
    "/investments/holdings/get": "INVESTMENT_HOLDINGS_GET_LIMIT",
    "/accounts/get": "ACCOUNTS_LIMIT",
    "/item/get": "ITEM_GET_LIMIT",
    "/institutions/get_by_id": "INSTITUTIONS_GET_BY_ID_LIMIT",
}


@dataclass(frozen=True)
class PlaidErrorSpec:
    status: int
    error_type: str
    error_code: str
    message: str
    display_message: str | None = None


# Fault name -> the error Plaid answers with (HTTP status and body per Plaid's error docs).
PLAID_FAULTS: dict[str, PlaidErrorSpec] = {
    "ITEM_LOGIN_REQUIRED": PlaidErrorSpec(
        400,
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        "the login details of this item have changed (credentials, MFA, or required user "
        "action) and a user login is required to update this information. use Link's update "
        "mode to restore the item to a good state",
        "The login details of this account have changed. Please reconnect it.",
    ),
    "RATE_LIMIT_EXCEEDED": PlaidErrorSpec(
        429,
        "RATE_LIMIT_EXCEEDED",
        "RATE_LIMIT",
        "rate limit exceeded for attempts to access this item. please try again later",
    ),
    "INSTITUTION_DOWN": PlaidErrorSpec(
        400,
        "INSTITUTION_ERROR",
        "INSTITUTION_DOWN",
        "this institution is not currently responding to this request. please try again soon",
        "This financial institution is not currently responding. Please try again later.",
    ),
    "INTERNAL_SERVER_ERROR": PlaidErrorSpec(
        500,
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
        "an unexpected error occurred",
        "Something went wrong. Please try again later.",
    ),
    "ITEM_NOT_FOUND": PlaidErrorSpec(
        400,
        "ITEM_ERROR",
        "ITEM_NOT_FOUND",
        "the Item you requested cannot be found. This Item does not exist, has been "
        "previously removed via /item/remove, or has had access removed by the user.",
    ),
    "INVALID_ACCESS_TOKEN": PlaidErrorSpec(
        400,
        "INVALID_INPUT",
        "INVALID_ACCESS_TOKEN",
        "provided access token is in an invalid format. expected format: "
        "access-<environment>-<identifier>",
    ),
    "503": PlaidErrorSpec(
        503,
        "API_ERROR",
        "PLANNED_MAINTENANCE",
        "the Plaid API is temporarily unavailable due to planned maintenance. visit "
        "https://status.plaid.com/ for more information",
        "This service is temporarily unavailable. Please try again later.",
    ),
}


def plaid_error(spec: PlaidErrorSpec, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(
        spec.status,
        {
            "error_type": spec.error_type,
            "error_code": spec.error_code,
            "error_code_reason": None,
            "error_message": spec.message,
            "display_message": spec.display_message,
            "request_id": _request_id(),
            "causes": [],
            "status": spec.status,
            "documentation_url": f"https://plaid.com/docs/errors/#{spec.error_code.lower()}",
            "suggested_action": None,
        },
        headers or {},
    )


def _invalid_request(code: str, message: str) -> ApiResponse:
    return plaid_error(PlaidErrorSpec(400, "INVALID_REQUEST", code, message))


def _invalid_input(code: str, message: str) -> ApiResponse:
    return plaid_error(PlaidErrorSpec(400, "INVALID_INPUT", code, message))


def _request_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(15))


class _PlaidAnswerError(Exception):
    """Raised inside a handler to answer with a Plaid error."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


# --- rendering -----------------------------------------------------------------------


def _cash_security(currency: str) -> dict[str, Any]:
    return _security(
        security_id=stable_plaid_id("security", "cash", currency),
        name={"USD": "U S Dollar", "EUR": "Euro"}.get(currency, currency),
        ticker=f"CUR:{currency}",
        security_type="cash",
        subtype="cash",
        cash_equivalent=True,
        price=1.0,
        currency=currency,
        mic=None,
    )


def _holding_security(holding: Holding) -> dict[str, Any]:
    # A money-market fund is a mutual fund that Plaid flags as cash-equivalent.
    security_type = "mutual fund" if holding.kind == "money market" else holding.kind
    return _security(
        security_id=stable_plaid_id("security", holding.ticker),
        name=holding.name,
        ticker=holding.ticker,
        security_type=security_type,
        subtype=_SECURITY_SUBTYPES[holding.kind],
        cash_equivalent=holding.cash_equivalent,
        price=holding.price,
        currency=holding.currency,
        mic=holding.mic,
    )


def _security(
    *,
    security_id: str,
    name: str,
    ticker: str,
    security_type: str,
    subtype: str,
    cash_equivalent: bool,
    price: float,
    currency: str,
    mic: str | None,
) -> dict[str, Any]:
    return {
        "security_id": security_id,
        "isin": None,
        "cusip": None,
        "sedol": None,
        "institution_security_id": None,
        "institution_id": None,
        "proxy_security_id": None,
        "name": name,
        "ticker_symbol": ticker,
        "is_cash_equivalent": cash_equivalent,
        "type": security_type,
        "subtype": subtype,
        "close_price": price,
        "close_price_as_of": PRICES_AS_OF,
        "update_datetime": None,
        "iso_currency_code": currency,
        "unofficial_currency_code": None,
        "market_identifier_code": mic,
        "sector": None,
        "industry": None,
        "cfi_code": None,
        "option_contract": None,
        "fixed_income": None,
        "figi": None,
    }


def _holding(
    account_id: str, security_id: str, quantity: float, price: float, cost: float, currency: str
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "security_id": security_id,
        "institution_price": price,
        "institution_price_as_of": PRICES_AS_OF,
        "institution_price_datetime": None,
        "institution_value": round(quantity * price, 2),
        "cost_basis": cost,
        "quantity": quantity,
        "iso_currency_code": currency,
        "unofficial_currency_code": None,
        "vested_quantity": None,
        "vested_value": None,
    }


def _account(template: AccountTemplate, account_id: str, investments: bool) -> dict[str, Any]:
    cash_usd = sum(amount * USD_PER_UNIT[currency] for currency, amount in template.cash)
    balances: dict[str, Any] = {
        "available": round(cash_usd, 2),
        "current": template.total_value_usd(),
        "limit": None,
        "iso_currency_code": "USD",
        "unofficial_currency_code": None,
        "last_updated_datetime": None,
    }
    if investments:
        balances["margin_loan_amount"] = None
    return {
        "account_id": account_id,
        "balances": balances,
        "mask": template.mask,
        "name": template.name,
        "official_name": template.official_name,
        "type": "investment",
        "subtype": template.subtype,
        "holder_category": "personal",
    }


def _item(item: dict[str, Any]) -> dict[str, Any]:
    institution = PLAID_INSTITUTIONS[item["institution"]]
    return {
        "item_id": item["item_id"],
        "institution_id": institution.plaid_institution_id,
        "institution_name": institution.name,
        "webhook": None,
        "auth_method": None,
        "error": None,
        "available_products": ["balance"],
        "billed_products": ["investments"],
        "products": ["investments"],
        "consented_products": ["investments"],
        "consent_expiration_time": None,
        "update_type": "background",
    }


def _institution(institution: Institution) -> dict[str, Any]:
    return {
        "institution_id": institution.plaid_institution_id,
        "name": institution.name,
        "products": ["investments"],
        "country_codes": ["US"],
        "url": institution.url,
        "primary_color": institution.primary_color,
        "logo": None,
        "routing_numbers": [],
        "dtc_numbers": [],
        "oauth": False,
        "connection_availability": "SUPPORTED",
    }


def _accounts_of(item: dict[str, Any]) -> list[tuple[AccountTemplate, str]]:
    institution = PLAID_INSTITUTIONS[item["institution"]]
    return [(a, item["account_ids"][a.key]) for a in institution.accounts]


# --- the API ---------------------------------------------------------------------------


class PlaidApi:
    """Plaid's JSON API over the shared state."""

    provider = PROVIDER
    prefix = PREFIX

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.routes: list[Route] = [
            self._route("/investments/holdings/get", self.investments_holdings_get, "securities"),
            self._route("/accounts/get", self.accounts_get, "accounts"),
            self._route("/item/get", self.item_get, "item"),
            self._route("/item/remove", self.item_remove, "request_id"),
            self._route("/institutions/get_by_id", self.institutions_get_by_id, "institution"),
            self._route("/link/token/create", self.link_token_create, "link_token"),
            self._route("/link/token/get", self.link_token_get, "metadata"),
            self._route(
                "/item/public_token/exchange", self.item_public_token_exchange, "access_token"
            ),
            self._route(
                "/sandbox/public_token/create", self.sandbox_public_token_create, "public_token"
            ),
            self._route("/investments/refresh", self.investments_refresh, "request_id"),
        ]
        self.pages: list[Page] = [
            Page(("GET", "POST"), "/hosted-link/{linkToken}", self.hosted_link_page),
        ]

    def _route(
        self, path: str, handler: Callable[[ApiRequest], ApiResponse], required_field: str
    ) -> Route:
        def guarded(request: ApiRequest) -> ApiResponse:
            try:
                return handler(request)
            except _PlaidAnswerError as failure:
                return failure.response

        return Route("POST", path, guarded, required_field)

    # --- cross-cutting: credentials, subjects, faults ------------------------------

    def authenticate(self, request: ApiRequest) -> ApiResponse | None:
        if request.body is not None and not request.body_is_json:
            return _invalid_request("INVALID_BODY", "body could not be parsed as JSON")
        if not isinstance(request.body, dict):
            return _invalid_request(
                "INVALID_BODY", "request body must be a JSON object with Content-Type JSON"
            )
        body = request.body
        # Plaid takes the keys from headers or, in older clients, from the body.
        client_id = request.headers.get("PLAID-CLIENT-ID") or body.get("client_id")
        secret = request.headers.get("PLAID-SECRET") or body.get("secret")
        missing = [
            name for name, value in (("client_id", client_id), ("secret", secret)) if not value
        ]
        if missing:
            return _invalid_request(
                "MISSING_FIELDS",
                "the following required fields are missing: " + ", ".join(missing),
            )
        if client_id != demo.PLAID_CLIENT_ID or not secrets.compare_digest(
            str(secret), demo.PLAID_SECRET
        ):
            return _invalid_input("INVALID_API_KEYS", "invalid client_id or secret provided")
        return None

    def subject_of(self, request: ApiRequest) -> str | None:
        token = request.json_object().get("access_token")
        return token if isinstance(token, str) else None

    def fault_response(
        self, fault: str, request: ApiRequest, retry_after: float | None
    ) -> ApiResponse:
        spec = PLAID_FAULTS[fault]
        headers: dict[str, str] = {}
        if fault == "RATE_LIMIT_EXCEEDED":
            path = request.endpoint.split(" ", 1)[1]
            spec = PlaidErrorSpec(
                spec.status,
                spec.error_type,
                _RATE_LIMIT_CODES.get(path, spec.error_code),
                spec.message,
            )
            if retry_after is not None:
                headers["Retry-After"] = retry_after_header(retry_after)
        return plaid_error(spec, headers)

    # --- helpers --------------------------------------------------------------------

    @staticmethod
    def _required(request: ApiRequest, *names: str) -> dict[str, Any]:
        body = request.json_object()
        missing = [n for n in names if body.get(n) in (None, "")]
        if missing:
            raise _PlaidAnswerError(
                _invalid_request(
                    "MISSING_FIELDS",
                    "the following required fields are missing: " + ", ".join(missing),
                )
            )
        return body

    @staticmethod
    def _item_for_token(state: dict[str, Any], access_token: str) -> dict[str, Any]:
        for item in state["plaid"]["items"].values():
            if item["access_token"] == access_token:
                if item["removed"]:
                    raise _PlaidAnswerError(plaid_error(PLAID_FAULTS["ITEM_NOT_FOUND"]))
                return item
        raise _PlaidAnswerError(plaid_error(PLAID_FAULTS["INVALID_ACCESS_TOKEN"]))

    # --- operations ---------------------------------------------------------------------

    def investments_holdings_get(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "access_token")
        item = self._item_for_token(self.store.read(), body["access_token"])
        wanted = (body.get("options") or {}).get("account_ids")
        accounts, holdings, securities = [], [], {}
        for template, account_id in _accounts_of(item):
            if wanted and account_id not in wanted:
                continue
            accounts.append(_account(template, account_id, investments=True))
            for h in template.holdings:
                security = _holding_security(h)
                securities[security["security_id"]] = security
                holdings.append(
                    _holding(
                        account_id,
                        security["security_id"],
                        h.quantity,
                        h.price,
                        h.cost_basis,
                        h.currency,
                    )
                )
            for currency, amount in template.cash:
                security = _cash_security(currency)
                securities[security["security_id"]] = security
                holdings.append(
                    _holding(account_id, security["security_id"], amount, 1.0, amount, currency)
                )
        return ApiResponse(
            200,
            {
                "accounts": accounts,
                "holdings": holdings,
                "securities": list(securities.values()),
                "item": _item(item),
                "request_id": _request_id(),
            },
        )

    def accounts_get(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "access_token")
        item = self._item_for_token(self.store.read(), body["access_token"])
        wanted = (body.get("options") or {}).get("account_ids")
        accounts = [
            _account(template, account_id, investments=False)
            for template, account_id in _accounts_of(item)
            if not wanted or account_id in wanted
        ]
        return ApiResponse(
            200, {"accounts": accounts, "item": _item(item), "request_id": _request_id()}
        )

    def item_get(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "access_token")
        item = self._item_for_token(self.store.read(), body["access_token"])
        item_json = _item(item) | {
            "created_at": item["created_at"],
            "consented_use_cases": [],
            "consented_data_scopes": ["account_balance_info", "investments"],
        }
        status = {
            "investments": {
                "last_successful_update": iso_timestamp(request.now),
                "last_failed_update": None,
            },
            "transactions": None,
            "last_webhook": None,
        }
        return ApiResponse(200, {"item": item_json, "status": status, "request_id": _request_id()})

    def item_remove(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "access_token")
        with self.store.transaction() as state:
            item = self._item_for_token(state, body["access_token"])
            # Removal is final: the token stops working and a re-link is a new Item.
            item["removed"] = True
        return ApiResponse(200, {"request_id": _request_id()})

    def institutions_get_by_id(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "institution_id", "country_codes")
        institution = _institution_by_plaid_id(body["institution_id"])
        return ApiResponse(
            200, {"institution": _institution(institution), "request_id": _request_id()}
        )

    def link_token_create(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "client_name", "language", "country_codes", "user")
        if not (body.get("user") or {}).get("client_user_id"):
            raise _PlaidAnswerError(
                _invalid_request(
                    "MISSING_FIELDS",
                    "the following required fields are missing: user.client_user_id",
                )
            )
        update_token = body.get("access_token")
        if update_token:
            self._item_for_token(self.store.read(), update_token)
        link_token = f"link-sandbox-{uuid.uuid4()}"
        hosted_link = body.get("hosted_link")
        record = {
            "created_at": request.now,
            "expires_at": request.now + LINK_TOKEN_LIFETIME_SECONDS,
            "client_name": body["client_name"],
            "language": body["language"],
            "country_codes": body["country_codes"],
            "products": body.get("products") or [],
            "webhook": body.get("webhook"),
            "redirect_uri": body.get("redirect_uri"),
            "update_access_token": update_token,
            "completion_redirect_uri": (hosted_link or {}).get("completion_redirect_uri"),
            "sessions": [],
        }
        with self.store.transaction() as state:
            state["plaid"]["link_tokens"][link_token] = record
        response: dict[str, Any] = {
            "link_token": link_token,
            "expiration": iso_timestamp(record["expires_at"]),
            "request_id": _request_id(),
        }
        if hosted_link is not None:
            response["hosted_link_url"] = f"{request.base_url}{PREFIX}/hosted-link/{link_token}"
        return ApiResponse(200, response)

    def link_token_get(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "link_token")
        record = self.store.read()["plaid"]["link_tokens"].get(body["link_token"])
        if record is None:
            raise _PlaidAnswerError(
                _invalid_input("INVALID_LINK_TOKEN", "invalid link_token provided")
            )
        return ApiResponse(
            200,
            {
                "link_token": body["link_token"],
                "created_at": iso_timestamp(record["created_at"]),
                "expiration": iso_timestamp(record["expires_at"]),
                "link_sessions": record["sessions"],
                "metadata": {
                    "initial_products": record["products"],
                    "webhook": record["webhook"],
                    "country_codes": record["country_codes"],
                    "language": record["language"],
                    "redirect_uri": record["redirect_uri"],
                    "client_name": record["client_name"],
                },
                "request_id": _request_id(),
            },
        )

    def item_public_token_exchange(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "public_token")
        with self.store.transaction() as state:
            for item in state["plaid"]["items"].values():
                if item["public_token"] and item["public_token"] == body["public_token"]:
                    # A public token is single-use: it becomes the Item's access token.
                    item["public_token"] = None
                    item["access_token"] = f"access-sandbox-{uuid.uuid4()}"
                    access_token, item_id = item["access_token"], item["item_id"]
                    break
            else:
                raise _PlaidAnswerError(
                    _invalid_input(
                        "INVALID_PUBLIC_TOKEN", "provided public token is expired or invalid"
                    )
                )
        return ApiResponse(
            200, {"access_token": access_token, "item_id": item_id, "request_id": _request_id()}
        )

    def sandbox_public_token_create(self, request: ApiRequest) -> ApiResponse:
        body = self._required(request, "institution_id", "initial_products")
        institution = _institution_by_plaid_id(body["institution_id"])
        with self.store.transaction() as state:
            item = _new_item(state, institution.slug, request.now)
        return ApiResponse(200, {"public_token": item["public_token"], "request_id": _request_id()})

    def investments_refresh(self, request: ApiRequest) -> ApiResponse:
        # Billed per call by Plaid; here it only checks the token (the data is static).
        body = self._required(request, "access_token")
        self._item_for_token(self.store.read(), body["access_token"])
        return ApiResponse(200, {"request_id": _request_id()})

    # --- Hosted Link -----------------------------------------------------------------

    def complete_link(self, link_token: str, institution_slug: str, now: float) -> str | None:
        """Act as the person finishing Hosted Link; returns the new public token.

        For an update-mode link token (created with an access_token) no new Item
        is made and None is returned, as with Plaid.
        """
        if institution_slug not in PLAID_INSTITUTIONS:
            raise ValueError(f"no Plaid institution {institution_slug!r}")
        with self.store.transaction() as state:
            record = state["plaid"]["link_tokens"].get(link_token)
            if record is None:
                raise ValueError(f"unknown link token {link_token!r}")
            results: list[dict[str, Any]] = []
            public_token = None
            if not record["update_access_token"]:
                item = _new_item(state, institution_slug, now)
                public_token = item["public_token"]
                results.append(_item_add_result(item))
            session_id = str(uuid.uuid4())
            session: dict[str, Any] = {
                "link_session_id": session_id,
                "started_at": iso_timestamp(now),
                "finished_at": iso_timestamp(now),
                "results": {
                    "item_add_results": results,
                    "cra_item_add_results": [],
                    "cra_update_results": [],
                    "bank_income_results": [],
                    "payroll_income_results": [],
                    "document_income_results": None,
                },
            }
            if results:
                session["on_success"] = {
                    "public_token": public_token,
                    "metadata": {
                        "institution": results[0]["institution"],
                        "accounts": results[0]["accounts"],
                        "link_session_id": session_id,
                    },
                }
            record["sessions"].append(session)
        return public_token

    def hosted_link_page(self, request: ApiRequest) -> ApiResponse:
        link_token = request.path_params["linkToken"]
        record = self.store.read()["plaid"]["link_tokens"].get(link_token)
        if record is None:
            return html_page(404, "Link expired", "<p>This link is invalid or has expired.</p>")
        if request.method == "POST":
            slug = request.form.get("institution", "")
            if slug not in PLAID_INSTITUTIONS:
                return html_page(400, "Unknown institution", "<p>Pick an institution.</p>")
            self.complete_link(link_token, slug, request.now)
            redirect = record["completion_redirect_uri"]
            if redirect:
                return ApiResponse(303, headers={"Location": redirect}, raw=b"")
            return html_page(200, "Connected", "<p>Account connected. You can close this tab.</p>")
        buttons = "".join(
            f"<button name='institution' value='{html.escape(i.slug)}'>"
            f"{html.escape(i.name)}</button>"
            for i in PLAID_INSTITUTIONS.values()
        )
        action = html.escape(f"{PREFIX}/hosted-link/{link_token}")
        return html_page(
            200,
            "Plaid Hosted Link (emulator)",
            f"<h1>{html.escape(record['client_name'])} wants to connect your account</h1>"
            f"<form method='post' action='{action}'>{buttons}</form>",
        )


def _institution_by_plaid_id(institution_id: str) -> Institution:
    for institution in PLAID_INSTITUTIONS.values():
        if institution.plaid_institution_id == institution_id:
            return institution
    raise _PlaidAnswerError(
        _invalid_input("INVALID_INSTITUTION", "invalid institution_id provided")
    )


def _new_item(state: dict[str, Any], institution_slug: str, now: float) -> dict[str, Any]:
    """A fresh Item waiting for its public token to be exchanged (new account ids)."""
    item_id = stable_plaid_id("item", str(uuid.uuid4()))
    institution = PLAID_INSTITUTIONS[institution_slug]
    item = {
        "item_id": item_id,
        "institution": institution_slug,
        "access_token": None,
        "public_token": f"public-sandbox-{uuid.uuid4()}",
        "created_at": iso_timestamp(now),
        "removed": False,
        "account_ids": {
            a.key: stable_plaid_id("account", item_id, a.key) for a in institution.accounts
        },
    }
    state["plaid"]["items"][item_id] = item
    return item


def _item_add_result(item: dict[str, Any]) -> dict[str, Any]:
    institution = PLAID_INSTITUTIONS[item["institution"]]
    return {
        "public_token": item["public_token"],
        "accounts": [
            {
                "id": account_id,
                "name": template.name,
                "mask": template.mask,
                "type": "investment",
                "subtype": template.subtype,
                "verification_status": None,
                "class_type": None,
            }
            for template, account_id in _accounts_of(item)
        ],
        "institution": {
            "name": institution.name,
            "institution_id": institution.plaid_institution_id,
        },
    }
