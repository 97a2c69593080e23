"""SnapTrade's ``GET /accounts/{accountId}/activities``: an account's history, a page at a time.

``startDate`` and ``endDate`` (YYYY-MM-DD) are inclusive, by trade date; ``type`` keeps the
comma-separated SnapTrade types it names; ``offset`` and ``limit`` (default and maximum
1000) page through the result, newest first, as ``PaginatedUniversalActivity``. ``amount``
keeps the account's sign: positive when cash comes in. The history runs to yesterday:
SnapTrade fetches activities daily, a day behind.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sandbox.activity import Activity, served_activities, today_of
from sandbox.data import SNAPTRADE_BROKERAGES
from sandbox.routing import ApiRequest, ApiResponse
from sandbox.snaptrade import render
from sandbox.snaptrade.access import owned_account, require_enabled
from sandbox.snaptrade.common import SnapTradeAnswerError, error
from sandbox.state import StateStore

MAX_LIMIT = 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"\d+")

# Activity kind -> SnapTrade's activity type.
SNAPTRADE_TYPES: dict[str, str] = {
    "buy": "BUY",
    "sell": "SELL",
    "dividend": "DIVIDEND",
    "interest": "INTEREST",
    "fee": "FEE",
    "deposit": "CONTRIBUTION",
    "withdrawal": "WITHDRAWAL",
}


class ActivityEndpoints:
    """Handler of the account activities read over the shared state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def activities(self, request: ApiRequest) -> ApiResponse:
        state = self.store.read()
        owned = owned_account(state, request)
        require_enabled(owned.auth)
        start = _date_arg(request, "startDate")
        end = _date_arg(request, "endDate")
        if start is not None and end is not None and start > end:
            raise _bad_request("startDate must be on or before endDate")
        offset = _integer_arg(request, "offset", 0, 0)
        limit = min(_integer_arg(request, "limit", MAX_LIMIT, 1), MAX_LIMIT)
        wanted = {t.strip().upper() for t in request.args.get("type", "").split(",") if t.strip()}

        history = served_activities(state, owned.template.key, today_of(request.now))
        found = [
            activity
            for activity in reversed(history)  # newest first
            if (start is None or activity.trade_date >= start)
            and (end is None or activity.trade_date <= end)
            and (not wanted or SNAPTRADE_TYPES[activity.kind] in wanted)
        ]
        institution = SNAPTRADE_BROKERAGES[owned.auth["brokerage"]].name
        symbols = render.universe(state)
        return ApiResponse(
            200,
            {
                "data": [
                    universal_activity(a, institution, symbols)
                    for a in found[offset : offset + limit]
                ],
                "pagination": {"offset": offset, "limit": limit, "total": len(found)},
            },
        )


def universal_activity(
    activity: Activity, institution: str, symbols: dict[str, Any]
) -> dict[str, Any]:
    """One activity as SnapTrade's AccountUniversalActivity."""
    holding = symbols.get(render.symbol_id(activity.ticker)) if activity.ticker else None
    trade = activity.kind in ("buy", "sell")
    # Trades settle the next business day (T+1); other activities on the day itself.
    settled = _next_business_day(activity.trade_date) if trade else activity.trade_date
    return {
        "id": activity.id,
        "symbol": None if holding is None else render.universal_symbol(holding),
        "currency_universal_symbol": None,
        "option_symbol": None,
        "price": activity.price or 0.0,
        "units": activity.quantity or 0.0,
        "amount": activity.amount,
        "currency": render.currency(activity.currency),
        "type": SNAPTRADE_TYPES[activity.kind],
        "option_type": "",
        "description": activity.description,
        "trade_date": f"{activity.trade_date.isoformat()}T00:00:00Z",
        "settlement_date": f"{settled.isoformat()}T00:00:00Z",
        "fee": activity.fee,
        "fx_rate": None,
        "institution": institution,
        "external_reference_id": None,
    }


def _next_business_day(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _bad_request(detail: str) -> SnapTradeAnswerError:
    return SnapTradeAnswerError(error(400, "0000", detail))


def _date_arg(request: ApiRequest, name: str) -> date | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _bad_request(f"{name} must be a date in the format YYYY-MM-DD")


def _integer_arg(request: ApiRequest, name: str, default: int, low: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if not _INTEGER.fullmatch(value) or int(value) < low:
        raise _bad_request(f"{name} must be an integer of at least {low}")
    return int(value)
