"""SnapTrade account activities (``/accounts/{id}/activities``) for one account, every page
of a date range, normalized into :class:`core.activities.NormalizedActivity`.

SnapTrade's ``amount`` is already positive when cash comes in. An activity priced in a
security rather than a currency (crypto) takes that security's code as its currency: it
has no exchange rate, so it is shown, never converted at 1:1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from core.activities import NormalizedActivity
from core.errors import MalformedResponse
from core.normalized import security_identifier
from core.numbers import finite_number
from providers.snaptrade.client import body, snaptrade_call
from providers.snaptrade.errors import PROVIDER

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

ENDPOINT = "/accounts/{id}/activities"
PAGE_SIZE = 1000  # SnapTrade's default and maximum ``limit``
MAX_PAGES = 200

_TYPES = {
    "BUY": "buy",
    "SELL": "sell",
    "REI": "buy",
    "DIVIDEND": "dividend",
    "SUBSTITUTE_DIVIDEND": "dividend",
    "STOCK_DIVIDEND": "dividend",
    "INTEREST": "interest",
    "FEE": "fee",
    "TAX": "tax",
    "CONTRIBUTION": "deposit",
    "WITHDRAWAL": "withdrawal",
    "TRANSFER": "transfer",
    "EXTERNAL_ASSET_TRANSFER_IN": "transfer",
    "EXTERNAL_ASSET_TRANSFER_OUT": "transfer",
    "SPLIT": "split",
}


@snaptrade_call("GET /accounts/{id}/activities")
def get_activity_page(
    client: SnapTrade,
    user_id: str,
    user_secret: str,
    account_id: str,
    *,
    start: date,
    end: date,
    offset: int,
) -> dict[str, Any]:
    answer = body(
        client.account_information.get_account_activities(
            account_id=account_id,
            user_id=user_id,
            user_secret=user_secret,
            start_date=start,
            end_date=end,
            offset=offset,
            limit=PAGE_SIZE,
        ),
        ENDPOINT,
        dict,
    )
    if not isinstance(answer.get("data"), list):
        raise MalformedResponse(
            "SnapTrade activities answer has no data list", provider=PROVIDER, endpoint=ENDPOINT
        )
    return answer


def fetch_snaptrade_activities(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str, *, start: date, end: date
) -> list[dict[str, Any]]:
    """Every activity of one account from ``start`` to ``end`` (one call per 1,000)."""
    activities: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        answer = get_activity_page(
            client, user_id, user_secret, account_id, start=start, end=end, offset=len(activities)
        )
        page = answer["data"]
        activities.extend(page)
        pagination = answer.get("pagination") or {}
        total = finite_number(pagination.get("total")) if isinstance(pagination, dict) else None
        if not page or total is None or len(activities) >= total:
            break
    return activities


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return _day(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _code(value: Any) -> str | None:
    if isinstance(value, dict):
        code = value.get("code") or value.get("symbol")
        return str(code) if code else None
    return str(value) if isinstance(value, str) and value else None


def normalize_snaptrade_activities(
    activities: list[dict[str, Any]],
    *,
    user_email: str,
    account: dict[str, Any],
) -> list[NormalizedActivity]:
    """One account's activities in the one schema."""
    institution = str(account.get("institution_name") or "Unknown")
    rows = []
    for activity in activities:
        if not isinstance(activity, dict) or not activity.get("id"):
            raise MalformedResponse(
                "SnapTrade activity without an id", provider=PROVIDER, endpoint=ENDPOINT
            )
        day = _day(activity.get("trade_date")) or _day(activity.get("settlement_date"))
        if day is None:
            raise MalformedResponse(
                "SnapTrade activity without a date", provider=PROVIDER, endpoint=ENDPOINT
            )
        symbol: dict[str, Any] = (
            activity["symbol"] if isinstance(activity.get("symbol"), dict) else {}
        )
        currency = _code(activity.get("currency")) or _code(
            activity.get("currency_universal_symbol")
        )
        if currency is None:
            raise MalformedResponse(
                "SnapTrade activity without a currency", provider=PROVIDER, endpoint=ENDPOINT
            )
        units = finite_number(activity.get("units"))
        rows.append(
            NormalizedActivity(
                user_email=user_email,
                provider=PROVIDER,
                institution=institution,  # as the positions name it (overlaps match on it)
                account_id=str(account.get("id")),
                account_name=account.get("name"),
                activity_id=str(activity["id"]),
                trade_date=day,
                type=_TYPES.get(str(activity.get("type") or "").upper(), "other"),
                ticker=symbol.get("symbol") or symbol.get("raw_symbol"),
                security_id=security_identifier(figi=symbol.get("figi_code")),
                description=activity.get("description"),
                quantity=abs(units) if units else None,
                price=finite_number(activity.get("price")),
                amount=finite_number(activity.get("amount")),
                fee=finite_number(activity.get("fee")) or None,
                currency=currency,
            )
        )
    return rows
