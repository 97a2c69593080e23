"""The SnapTrade trading operations: symbol search, order impact, and placing the
trade an impact returned (each trade id once, within its lifetime).

Orders are recorded in the state, not applied: holdings change only through a
test's units override (``sandbox.overrides``).
"""

from __future__ import annotations

import uuid

from sandbox.data import stable_uuid
from sandbox.routing import ApiRequest, ApiResponse, iso_timestamp
from sandbox.snaptrade import render
from sandbox.snaptrade.access import accounts_of_user, owned_account, require_trading
from sandbox.snaptrade.common import error
from sandbox.state import StateStore

# A trade id from /trade/impact can be placed for 5 minutes.
TRADE_LIFETIME_SECONDS = 300


class TradingEndpoints:
    """Handlers of the trading operations over the shared state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def symbol_search(self, request: ApiRequest) -> ApiResponse:
        state = self.store.read()
        owned = owned_account(state, request)
        # Account-scoped symbol search is a trading endpoint: an app without trading
        # permission gets the same 403 code 1020 as on order impact and placement.
        require_trading(owned.auth)
        needle = str(request.json_object().get("substring") or "").strip().lower()
        matches = [
            render.universal_symbol(h)
            for h in render.universe(state).values()
            if needle and (needle in h.ticker.lower() or needle in h.name.lower())
        ]
        return ApiResponse(200, matches)

    def account_orders(self, request: ApiRequest) -> ApiResponse:
        """The account's recent orders; ``state=open`` keeps those not yet filled."""
        state = self.store.read()
        owned = owned_account(state, request)
        wanted = (request.args.get("state") or "all").lower()
        if wanted not in ("all", "open", "executed"):
            return error(400, "0000", "state must be all, open or executed")
        orders = []
        for order in state["snaptrade"]["orders"]:
            if order.get("account_id") != owned.account_id:
                continue
            is_open = order["status"] in ("ACCEPTED", "PENDING", "PARTIAL")
            if wanted == "all" or (wanted == "open") == is_open:
                orders.append({k: v for k, v in order.items() if k != "account_id"})
        return ApiResponse(200, orders)

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
            return error(400, "0000", "Missing required fields: " + ", ".join(missing))
        holding = render.universe().get(form["universal_symbol_id"])
        if holding is None:
            return error(400, "0000", "Unknown universal_symbol_id")
        units, price = form.get("units"), form.get("price")
        if not isinstance(units, int | float) or units <= 0:
            return error(400, "0000", "units must be a positive number")
        if form["order_type"] in ("Limit", "StopLimit") and not isinstance(price, int | float):
            return error(400, "0000", "price is required for limit orders")
        trade_id = str(uuid.uuid4())
        with self.store.transaction() as state:
            owned = owned_account(state, request)
            require_trading(owned.auth)
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
        currency = render.currency(holding.currency)
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
                        "sync_status": render.sync_status(),
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
                return error(400, "0000", f"Trade {trade_id} not found")
            # A trade id is used once, whether it is placed or found expired.
            del state["snaptrade"]["trades"][trade_id]
            if request.now - trade["created_at"] > TRADE_LIFETIME_SECONDS:
                return error(
                    400, "0000", f"Trade {trade_id} has expired; request a new order impact"
                )
            auth = next(
                o.auth
                for o in accounts_of_user(state, trade["user_id"])
                if o.account_id == trade["account_id"]
            )
            require_trading(auth)
            holding = render.universe()[trade["universal_symbol_id"]]
            fill_price = trade["price"] if trade["price"] is not None else holding.price
            executed = trade["order_type"] == "Market"
            placed_at = iso_timestamp(request.now)
            order = {
                "brokerage_order_id": str(uuid.uuid4()),
                "status": "EXECUTED" if executed else "ACCEPTED",
                "universal_symbol": render.universal_symbol(holding),
                "option_symbol": None,
                "action": trade["action"],
                "total_quantity": render.decimal(trade["units"]),
                "open_quantity": "0" if executed else render.decimal(trade["units"]),
                "canceled_quantity": "0",
                "filled_quantity": render.decimal(trade["units"]) if executed else "0",
                "execution_price": render.decimal(fill_price) if executed else None,
                "limit_price": (
                    render.decimal(trade["price"]) if trade["price"] is not None else None
                ),
                "stop_price": None,
                "order_type": trade["order_type"],
                "time_in_force": trade["time_in_force"],
                "time_placed": placed_at,
                "time_updated": placed_at,
                "time_executed": placed_at if executed else None,
                "expiry_date": None,
                "child_brokerage_order_ids": None,
            }
            # The order is recorded, not applied to positions (only a test moves units).
            state["snaptrade"]["orders"].append(order | {"account_id": trade["account_id"]})
        return ApiResponse(200, order)
