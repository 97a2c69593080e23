"""Plaid investment transactions (``/investments/transactions/get``) for one Item, every
page of a date range, normalized into :class:`core.activities.NormalizedActivity`.

Plaid's ``amount`` is positive when cash leaves the account; the schema's is positive when
it comes in, so the sign is turned round here. Quantities are kept positive (Plaid sends a
sale's as negative): the type says the direction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from core.activities import NormalizedActivity
from core.errors import MalformedResponse
from core.normalized import institution_display_name, security_identifier
from core.numbers import finite_number
from core.redaction import register_secret
from providers.plaid.client import call, to_plain
from providers.plaid.errors import PROVIDER

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi

ENDPOINT = "/investments/transactions/get"
PAGE_SIZE = 500  # Plaid's maximum ``count``
# A runaway answer (a total that keeps growing) stops here rather than looping forever.
MAX_PAGES = 200

# (type, subtype) -> our type; a subtype not listed takes its type's default.
_SUBTYPES = {
    "dividend": "dividend",
    "qualified dividend": "dividend",
    "non-qualified dividend": "dividend",
    "dividend reinvestment": "buy",
    "long-term capital gain": "dividend",
    "short-term capital gain": "dividend",
    "interest": "interest",
    "interest receivable": "interest",
    "deposit": "deposit",
    "contribution": "deposit",
    "withdrawal": "withdrawal",
    "distribution": "withdrawal",
    "tax": "tax",
    "tax withheld": "tax",
    "stock split": "split",
    "split": "split",
}
_TYPES = {"buy": "buy", "sell": "sell", "fee": "fee", "transfer": "transfer", "cash": "other"}


def activity_type(plaid_type: Any, subtype: Any) -> str:
    kind = str(plaid_type or "").lower()
    sub = str(subtype or "").lower()
    if kind in ("buy", "sell"):
        return kind
    if sub in _SUBTYPES:
        return _SUBTYPES[sub]
    return _TYPES.get(kind, "other")


def fetch_plaid_transactions(
    access_token: str,
    client: PlaidApi,
    *,
    start: date,
    end: date,
    subject: str | None = None,
) -> dict[str, Any]:
    """Every investment transaction of one Item from ``start`` to ``end``, page by page.

    One call when they fit in one page (500), which is what an incremental sync of a quiet
    account needs. ``subject`` names the Item in the call ledger (never the token)."""
    from plaid.model.investments_transactions_get_request import (
        InvestmentsTransactionsGetRequest,
    )
    from plaid.model.investments_transactions_get_request_options import (
        InvestmentsTransactionsGetRequestOptions,
    )

    register_secret(access_token)
    transactions: list[dict[str, Any]] = []
    securities: dict[str, dict[str, Any]] = {}
    first: dict[str, Any] = {}
    for _ in range(MAX_PAGES):
        request = InvestmentsTransactionsGetRequest(
            access_token=access_token,
            start_date=start,
            end_date=end,
            options=InvestmentsTransactionsGetRequestOptions(
                count=PAGE_SIZE, offset=len(transactions)
            ),
        )
        plain = to_plain(call(client, ENDPOINT, _asking(client, request), subject=subject))
        for key in ("accounts", "investment_transactions", "securities", "item"):
            if not isinstance(plain.get(key), list if key != "item" else dict):
                raise MalformedResponse(
                    f"Plaid investment transactions answer has no {key!r}",
                    provider=PROVIDER,
                    endpoint=ENDPOINT,
                )
        first = first or plain
        page = plain["investment_transactions"]
        transactions.extend(page)
        securities.update({s.get("security_id"): s for s in plain["securities"]})
        total = finite_number(plain.get("total_investment_transactions"))
        if not page or total is None or len(transactions) >= total:
            break
    return {**first, "investment_transactions": transactions, "securities": securities}


def _asking(client: PlaidApi, request: Any) -> Callable[[], Any]:
    return lambda: client.investments_transactions_get(request)


def normalize_plaid_transactions(
    raw: dict[str, Any], *, user_email: str, institution_slug: str
) -> list[NormalizedActivity]:
    """The Item's transactions in the one schema (institution from the Item, as holdings)."""
    institution = raw["item"].get("institution_name") or institution_display_name(institution_slug)
    accounts = {a.get("account_id"): a for a in raw["accounts"] if isinstance(a, dict)}
    securities = raw["securities"]
    rows = []
    for tx in raw["investment_transactions"]:
        if not isinstance(tx, dict) or not tx.get("investment_transaction_id"):
            raise MalformedResponse(
                "Plaid investment transaction without an id", provider=PROVIDER, endpoint=ENDPOINT
            )
        day = tx.get("date")
        if isinstance(day, str):
            try:
                day = date.fromisoformat(day[:10])
            except ValueError:
                day = None
        if not isinstance(day, date):
            raise MalformedResponse(
                "Plaid investment transaction without a date", provider=PROVIDER, endpoint=ENDPOINT
            )
        security = securities.get(tx.get("security_id")) or {}
        account = accounts.get(tx.get("account_id")) or {}
        amount = finite_number(tx.get("amount"))
        quantity = finite_number(tx.get("quantity"))
        rows.append(
            NormalizedActivity(
                user_email=user_email,
                provider=PROVIDER,
                institution=institution,
                account_id=str(tx.get("account_id")),
                account_name=account.get("official_name") or account.get("name"),
                activity_id=str(tx["investment_transaction_id"]),
                trade_date=day,
                type=activity_type(tx.get("type"), tx.get("subtype")),
                ticker=security.get("ticker_symbol"),
                security_id=security_identifier(
                    figi=security.get("figi"),
                    isin=security.get("isin"),
                    cusip=security.get("cusip"),
                ),
                description=tx.get("name"),
                quantity=abs(quantity) if quantity else None,
                price=finite_number(tx.get("price")),
                amount=-amount if amount is not None else None,
                fee=finite_number(tx.get("fees")) or None,
                currency=str(
                    tx.get("iso_currency_code") or tx.get("unofficial_currency_code") or "USD"
                ),
            )
        )
    return rows
