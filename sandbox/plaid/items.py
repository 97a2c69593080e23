"""The Plaid operations on a linked Item: holdings, accounts, the Item itself
(get, remove, refresh) and institution look-up.
"""

from __future__ import annotations

from sandbox.plaid import render
from sandbox.plaid.common import request_id, required_fields
from sandbox.plaid.records import institution_by_plaid_id, item_for_token
from sandbox.routing import ApiRequest, ApiResponse, iso_timestamp
from sandbox.state import StateStore


class ItemEndpoints:
    """Handlers of the Item-scoped operations over the shared state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def investments_holdings_get(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token")
        state = self.store.read()
        item = item_for_token(state, body["access_token"])
        wanted = (body.get("options") or {}).get("account_ids")
        accounts, holdings, securities = [], [], {}
        for template, account_id in render.accounts_of(state, item):
            if wanted and account_id not in wanted:
                continue
            accounts.append(render.account(template, account_id, investments=True))
            for h in template.holdings:
                security = render.holding_security(h)
                securities[security["security_id"]] = security
                holdings.append(
                    render.holding(
                        account_id,
                        security["security_id"],
                        h.quantity,
                        h.price,
                        h.cost_basis,
                        h.currency,
                    )
                )
            for currency, amount in template.cash:
                security = render.cash_security(currency)
                securities[security["security_id"]] = security
                holdings.append(
                    render.holding(
                        account_id, security["security_id"], amount, 1.0, amount, currency
                    )
                )
        return ApiResponse(
            200,
            {
                "accounts": accounts,
                "holdings": holdings,
                "securities": list(securities.values()),
                "item": render.item(item),
                "request_id": request_id(),
            },
        )

    def accounts_get(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token")
        state = self.store.read()
        item = item_for_token(state, body["access_token"])
        wanted = (body.get("options") or {}).get("account_ids")
        accounts = [
            render.account(template, account_id, investments=False)
            for template, account_id in render.accounts_of(state, item)
            if not wanted or account_id in wanted
        ]
        return ApiResponse(
            200, {"accounts": accounts, "item": render.item(item), "request_id": request_id()}
        )

    def item_get(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token")
        item = item_for_token(self.store.read(), body["access_token"])
        item_json = render.item(item) | {
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
        return ApiResponse(200, {"item": item_json, "status": status, "request_id": request_id()})

    def item_remove(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token")
        with self.store.transaction() as state:
            item = item_for_token(state, body["access_token"])
            # Removal is final: the token stops working and a re-link is a new Item.
            item["removed"] = True
        return ApiResponse(200, {"request_id": request_id()})

    def institutions_get_by_id(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "institution_id", "country_codes")
        institution = institution_by_plaid_id(body["institution_id"])
        return ApiResponse(
            200, {"institution": render.institution(institution), "request_id": request_id()}
        )

    def investments_refresh(self, request: ApiRequest) -> ApiResponse:
        # Billed per call by Plaid; here it only checks the token: the holdings change
        # only through a test's overrides, which every answer reads straight away.
        body = required_fields(request, "access_token")
        item_for_token(self.store.read(), body["access_token"])
        return ApiResponse(200, {"request_id": request_id()})
