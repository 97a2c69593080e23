"""Plaid's ``/investments/transactions/get``: an Item's activity history, a page at a time.

Plaid's sign convention is the account's turned round: ``amount`` is positive when cash
leaves the account (a buy, a fee, a withdrawal) and negative when it comes in (a sale, a
dividend, interest, a deposit); a sale's ``quantity`` is negative. History reaches back 24
months: an earlier ``start_date`` is clamped to it. Transactions come newest first.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sandbox.activity import Activity, history_window, served_activities, today_of
from sandbox.data import holding_by_ticker, stable_plaid_id
from sandbox.overrides import described
from sandbox.plaid import render
from sandbox.plaid.common import PlaidAnswerError, invalid_request, request_id, required_fields
from sandbox.plaid.records import item_for_token
from sandbox.routing import ApiRequest, ApiResponse
from sandbox.state import StateStore

DEFAULT_COUNT = 100
MAX_COUNT = 500
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# Activity kind -> Plaid (type, subtype).
PLAID_TYPES: dict[str, tuple[str, str]] = {
    "buy": ("buy", "buy"),
    "sell": ("sell", "sell"),
    "dividend": ("cash", "dividend"),
    "interest": ("cash", "interest"),
    "fee": ("fee", "account fee"),
    "deposit": ("cash", "deposit"),
    "withdrawal": ("cash", "withdrawal"),
}


def transaction_id(account_id: str, activity_id: str) -> str:
    """The Plaid id of an activity in one Item's account (a new Item: new ids)."""
    return stable_plaid_id("investment-transaction", account_id, activity_id)


class TransactionEndpoints:
    """Handler of the investment transactions read over the shared state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def investments_transactions_get(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token", "start_date", "end_date")
        start, end = _date_field(body, "start_date"), _date_field(body, "end_date")
        if start > end:
            raise _invalid_field("start_date must be on or before end_date")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise _invalid_field("options must be an object")
        count = _integer_option(options, "count", DEFAULT_COUNT, 1, MAX_COUNT)
        offset = _integer_option(options, "offset", 0, 0, None)
        wanted = options.get("account_ids")
        if wanted is not None and (
            not isinstance(wanted, list) or not all(isinstance(i, str) for i in wanted)
        ):
            raise _invalid_field("options.account_ids must be a list of account ids")
        async_update = options.get("async_update", False)
        if not isinstance(async_update, bool):
            raise _invalid_field("options.async_update must be a boolean")

        state = self.store.read()
        item = item_for_token(state, body["access_token"])
        today = today_of(request.now)
        start = max(start, history_window(today)[0])  # Plaid keeps 24 months
        accounts: list[dict[str, Any]] = []
        found: list[tuple[int, int, Activity, str]] = []
        for position, (template, account_id) in enumerate(render.accounts_of(state, item)):
            if wanted and account_id not in wanted:
                continue
            accounts.append(render.account(template, account_id, investments=True))
            history = served_activities(state, template.key, today)
            found.extend(
                (position, index, activity, account_id)
                for index, activity in enumerate(history)
                if start <= activity.trade_date <= end
            )
        # Newest first; within a day, accounts in order and each day's activities last first.
        found.sort(key=lambda f: (-f[2].trade_date.toordinal(), f[0], -f[1]))
        page = found[offset : offset + count]
        securities: dict[str, dict[str, Any]] = {}
        transactions = []
        for _, _, activity, account_id in page:
            security_id = None
            holding = holding_by_ticker(activity.ticker) if activity.ticker else None
            if holding is not None:
                security = render.holding_security(described(state, holding))
                security_id = security["security_id"]
                securities[security_id] = security
            transactions.append(transaction(activity, account_id, security_id))
        return ApiResponse(
            200,
            {
                "item": render.item(item),
                "accounts": accounts,
                "securities": list(securities.values()),
                "investment_transactions": transactions,
                "total_investment_transactions": len(found),
                "request_id": request_id(),
            },
        )


def transaction(activity: Activity, account_id: str, security_id: str | None) -> dict[str, Any]:
    """One activity as Plaid's InvestmentTransaction."""
    kind, subtype = PLAID_TYPES[activity.kind]
    quantity = activity.quantity or 0.0
    return {
        "investment_transaction_id": transaction_id(account_id, activity.id),
        "account_id": account_id,
        "security_id": security_id,
        "date": activity.trade_date.isoformat(),
        "name": activity.description,
        "quantity": -quantity if activity.kind == "sell" else quantity,
        "amount": 0.0 - activity.amount,  # Plaid: positive = cash debited
        "price": activity.price or 0.0,
        "fees": activity.fee,
        "type": kind,
        "subtype": subtype,
        "iso_currency_code": activity.currency,
        "unofficial_currency_code": None,
        "cancel_transaction_id": None,
        "transaction_datetime": None,
    }


def _invalid_field(message: str) -> PlaidAnswerError:
    return PlaidAnswerError(invalid_request("INVALID_FIELD", message))


def _date_field(body: dict[str, Any], name: str) -> date:
    value = body[name]
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _invalid_field(f"{name} must be a valid date in the format YYYY-MM-DD")


def _integer_option(
    options: dict[str, Any], name: str, default: int, low: int, high: int | None
) -> int:
    value = options.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _invalid_field(f"options.{name} must be an integer {bounds}")
    return value
