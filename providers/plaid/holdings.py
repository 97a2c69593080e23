"""Plaid holdings: one ``/investments/holdings/get`` per Item, normalized into positions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from core.errors import MalformedResponse
from core.normalized import NormalizedPosition, institution_display_name, security_identifier
from core.numbers import finite_number
from core.redaction import register_secret
from providers.plaid.client import call, to_plain
from providers.plaid.errors import PROVIDER

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi

SECURITY_TYPE_MAP = {
    "equity": "equity",
    "etf": "etf",
    "mutual fund": "mutual_fund",
    "fixed income": "fixed_income",
    "derivative": "option",
    "cryptocurrency": "crypto",
    "cash": "cash",
}


def fetch_plaid_holdings(
    access_token: str, client: PlaidApi, *, subject: str | None = None
) -> dict[str, Any]:
    """One ``/investments/holdings/get`` call for one Item.

    It already returns the Item, its accounts, holdings and securities, so no
    separate ``/accounts/get`` call is made. ``subject`` names the Item in the
    call ledger (its institution slug), since the token itself must not.
    """
    from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest

    register_secret(access_token)
    request = InvestmentsHoldingsGetRequest(access_token=access_token)
    response = call(
        client,
        "/investments/holdings/get",
        lambda: client.investments_holdings_get(request),
        subject=subject,
    )
    plain = to_plain(response)
    for key in ("accounts", "holdings", "securities", "item"):
        if key not in plain:
            raise MalformedResponse(
                f"Plaid holdings answer has no {key!r}",
                provider=PROVIDER,
                endpoint="/investments/holdings/get",
            )
    return plain


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _security_type(security: dict[str, Any]) -> str:
    raw_type = str(security.get("type") or "").lower()
    subtype = str(security.get("subtype") or "").lower()
    if raw_type == "cash":
        return "cash"
    if "money market" in subtype or (
        raw_type == "mutual fund" and security.get("is_cash_equivalent")
    ):
        return "money_market"
    return SECURITY_TYPE_MAP.get(raw_type, "other")


def normalize_plaid_holdings(
    holdings: Iterable[dict[str, Any]],
    securities: Iterable[dict[str, Any]],
    *,
    accounts: Iterable[dict[str, Any]] = (),
    user_email: str = "",
    institution: str = "",
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """Plaid holdings to normalized positions; cash summed into one row per account and currency."""
    securities_by_id = {s["security_id"]: s for s in securities}
    accounts_by_id = {a["account_id"]: a for a in accounts}
    positions: list[NormalizedPosition] = []
    cash: dict[tuple[str, str], dict[str, Any]] = {}
    for holding in holdings:
        security = securities_by_id.get(holding.get("security_id"), {})
        account = accounts_by_id.get(holding.get("account_id"), {})
        currency = (
            holding.get("iso_currency_code")
            or holding.get("unofficial_currency_code")
            or security.get("iso_currency_code")
            or "USD"
        )
        quantity = finite_number(holding.get("quantity"))
        if quantity is None:
            raise MalformedResponse(
                "Plaid holding without a quantity",
                provider=PROVIDER,
                endpoint="/investments/holdings/get",
            )
        value = finite_number(holding.get("institution_value"))
        security_type = _security_type(security)
        as_of = (
            as_datetime(holding.get("institution_price_datetime"))
            or as_datetime(holding.get("institution_price_as_of"))
            or fetched_at
        )
        account_fields: dict[str, Any] = {
            "account_id": str(holding.get("account_id")),
            "account_name": account.get("official_name") or account.get("name"),
            "account_type": account.get("subtype") or account.get("type"),
            "account_mask": account.get("mask"),
        }
        if security_type == "cash":
            key = (account_fields["account_id"], currency)
            entry = cash.setdefault(key, {**account_fields, "value": 0.0, "as_of": as_of})
            entry["value"] += value if value is not None else quantity
            continue
        positions.append(
            NormalizedPosition(
                user_email=user_email,
                provider=PROVIDER,
                institution=institution,
                ticker=security.get("ticker_symbol"),
                name=security.get("name"),
                security_type=security_type,
                quantity=quantity,
                price=finite_number(holding.get("institution_price")),
                market_value=value,
                cost_basis=finite_number(holding.get("cost_basis")),
                currency=currency,
                as_of=as_of,
                security_id=security_identifier(
                    figi=security.get("figi"),
                    isin=security.get("isin"),
                    cusip=security.get("cusip"),
                ),
                **account_fields,
            )
        )
    for (_account_id, currency), entry in cash.items():
        amount = round(entry.pop("value"), 2)
        as_of = entry.pop("as_of")
        positions.append(
            NormalizedPosition(
                user_email=user_email,
                provider=PROVIDER,
                institution=institution,
                ticker=None,
                name=f"Cash ({currency})",
                security_type="cash",
                quantity=amount,
                price=1.0,
                market_value=amount,
                cost_basis=None,
                currency=currency,
                as_of=as_of,
                **entry,
            )
        )
    return positions


def load_plaid_positions(
    access_token: str,
    client: PlaidApi,
    *,
    user_email: str,
    institution_slug: str,
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """Fetch one Item and normalize it (what the position cache calls per Item)."""
    raw = fetch_plaid_holdings(access_token, client, subject=institution_slug)
    return normalize_item(
        raw, user_email=user_email, institution_slug=institution_slug, at=fetched_at
    )


def normalize_item(
    raw: dict[str, Any], *, user_email: str, institution_slug: str, at: datetime | None = None
) -> list[NormalizedPosition]:
    """One Item's ``/investments/holdings/get`` answer in the one schema."""
    fetched_at = at or datetime.now(UTC)
    institution = raw["item"].get("institution_name") or institution_display_name(institution_slug)
    return normalize_plaid_holdings(
        raw["holdings"],
        raw["securities"],
        accounts=raw["accounts"],
        user_email=user_email,
        institution=institution,
        fetched_at=fetched_at,
    )
