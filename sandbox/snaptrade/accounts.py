"""The SnapTrade read operations: accounts, balances, positions and connections."""

from __future__ import annotations

from sandbox.routing import ApiRequest, ApiResponse, iso_timestamp
from sandbox.snaptrade import render
from sandbox.snaptrade.access import accounts_of_user, owned_account, require_enabled
from sandbox.snaptrade.common import error
from sandbox.state import StateStore


class AccountEndpoints:
    """Handlers of the account and connection reads over the shared state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def list_accounts(self, request: ApiRequest) -> ApiResponse:
        state = self.store.read()
        return ApiResponse(
            200,
            [
                render.account(o.auth, o.template, o.account_id)
                for o in accounts_of_user(state, request.args["userId"])
            ],
        )

    def balances(self, request: ApiRequest) -> ApiResponse:
        owned = owned_account(self.store.read(), request)
        require_enabled(owned.auth)
        return ApiResponse(
            200,
            [
                {"currency": render.currency(currency), "cash": amount, "buying_power": amount}
                for currency, amount in owned.template.cash
            ],
        )

    def positions(self, request: ApiRequest) -> ApiResponse:
        owned = owned_account(self.store.read(), request)
        require_enabled(owned.auth)
        return ApiResponse(
            200,
            {
                "results": [render.position(h) for h in owned.template.holdings],
                "data_freshness": {"as_of": iso_timestamp(request.now)},
            },
        )

    def list_authorizations(self, request: ApiRequest) -> ApiResponse:
        state = self.store.read()
        user_id = request.args["userId"]
        return ApiResponse(
            200,
            [
                render.authorization(auth)
                for auth in state["snaptrade"]["authorizations"].values()
                if auth["user_id"] == user_id
            ],
        )

    def authorization_detail(self, request: ApiRequest) -> ApiResponse:
        auth_id = request.path_params["authorizationId"]
        auth = self.store.read()["snaptrade"]["authorizations"].get(auth_id)
        if auth is None or auth["user_id"] != request.args["userId"]:
            return error(404, "0000", f"Connection {auth_id} not found")
        return ApiResponse(200, render.authorization(auth))
