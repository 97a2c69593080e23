"""The Plaid API as the server mounts it: its route table and what the server asks
of every provider (credentials check, fault subject, fault answers).

Every operation is ``POST <path>`` with a JSON body.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sandbox import demo
from sandbox.plaid.common import (
    PLAID_FAULTS,
    PREFIX,
    PROVIDER,
    RATE_LIMIT_CODES,
    PlaidAnswerError,
    PlaidErrorSpec,
    invalid_input,
    invalid_request,
    plaid_error,
)
from sandbox.plaid.items import ItemEndpoints
from sandbox.plaid.link import LinkEndpoints
from sandbox.plaid.transactions import TransactionEndpoints
from sandbox.plaid.webhooks import PlaidWebhooks, WebhookEndpoints
from sandbox.routing import ApiRequest, ApiResponse, Page, Route, retry_after_header
from sandbox.state import StateStore


class PlaidApi:
    """Plaid's JSON API over the shared state."""

    provider = PROVIDER
    prefix = PREFIX

    def __init__(self, store: StateStore) -> None:
        self.store = store
        # Builds and queues Plaid's webhooks (the controls reach it here too).
        self.webhooks = webhooks = PlaidWebhooks(store)
        items = ItemEndpoints(store)
        self._link = link = LinkEndpoints(store, webhooks)
        transactions = TransactionEndpoints(store)
        hooks = WebhookEndpoints(store, webhooks)
        self.routes: list[Route] = [
            self._route("/investments/holdings/get", items.investments_holdings_get, "securities"),
            self._route("/accounts/get", items.accounts_get, "accounts"),
            self._route("/item/get", items.item_get, "item"),
            self._route("/item/remove", items.item_remove, "request_id"),
            self._route("/institutions/get_by_id", items.institutions_get_by_id, "institution"),
            self._route("/link/token/create", link.link_token_create, "link_token"),
            self._route("/link/token/get", link.link_token_get, "metadata"),
            self._route(
                "/item/public_token/exchange", link.item_public_token_exchange, "access_token"
            ),
            self._route(
                "/sandbox/public_token/create", link.sandbox_public_token_create, "public_token"
            ),
            self._route("/investments/refresh", items.investments_refresh, "request_id"),
            self._route(
                "/investments/transactions/get",
                transactions.investments_transactions_get,
                "investment_transactions",
            ),
            self._route("/webhook_verification_key/get", hooks.webhook_verification_key_get, "key"),
            self._route("/item/webhook/update", hooks.item_webhook_update, "item"),
            self._route(
                "/sandbox/item/fire_webhook", hooks.sandbox_item_fire_webhook, "webhook_fired"
            ),
        ]
        self.pages: list[Page] = [
            Page(("GET", "POST"), "/hosted-link/{linkToken}", link.hosted_link_page),
        ]

    def _route(
        self, path: str, handler: Callable[[ApiRequest], ApiResponse], required_field: str
    ) -> Route:
        def guarded(request: ApiRequest) -> ApiResponse:
            try:
                return handler(request)
            except PlaidAnswerError as failure:
                return failure.response

        return Route("POST", path, guarded, required_field)

    def complete_link(self, link_token: str, institution_slug: str, now: float) -> str | None:
        """Act as the person finishing Hosted Link; see :meth:`LinkEndpoints.complete_link`."""
        return self._link.complete_link(link_token, institution_slug, now)

    # --- cross-cutting: credentials, subjects, faults ------------------------------

    def authenticate(self, request: ApiRequest) -> ApiResponse | None:
        if request.body is not None and not request.body_is_json:
            return invalid_request("INVALID_BODY", "body could not be parsed as JSON")
        if not isinstance(request.body, dict):
            return invalid_request(
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
            return invalid_request(
                "MISSING_FIELDS",
                "the following required fields are missing: " + ", ".join(missing),
            )
        if client_id != demo.PLAID_CLIENT_ID or not secrets.compare_digest(
            str(secret), demo.PLAID_SECRET
        ):
            return invalid_input("INVALID_API_KEYS", "invalid client_id or secret provided")
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
                RATE_LIMIT_CODES.get(path, spec.error_code),
                spec.message,
            )
            if retry_after is not None:
                headers["Retry-After"] = retry_after_header(retry_after)
        return plaid_error(spec, headers)
