"""Plaid's JSON shapes for the demo data: securities, holdings, accounts, Items, institutions.

Every field plaid-python 46 requires is present (it raises TypeError on a
missing one), nullable ones as null, numbers as JSON numbers.
"""

from __future__ import annotations

from typing import Any

from sandbox.data import (
    PLAID_INSTITUTIONS,
    PRICES_AS_OF,
    AccountTemplate,
    Holding,
    Institution,
    cash_in_usd,
    demo_figi,
    stable_plaid_id,
)
from sandbox.overrides import current_account

_SECURITY_SUBTYPES = {
    "equity": "common stock",
    "etf": "etf",
    "mutual fund": "mutual fund",
    "money market": "money market",
}


def cash_security(currency: str) -> dict[str, Any]:
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


def holding_security(holding: Holding) -> dict[str, Any]:
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
        "figi": None if security_type == "cash" else demo_figi(ticker),
    }


def holding(
    account_id: str,
    security_id: str,
    quantity: float,
    price: float,
    cost: float | None,
    currency: str,
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


def account(template: AccountTemplate, account_id: str, investments: bool) -> dict[str, Any]:
    cash_usd = cash_in_usd(template.cash)
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


def item(record: dict[str, Any]) -> dict[str, Any]:
    institution = PLAID_INSTITUTIONS[record["institution"]]
    return {
        "item_id": record["item_id"],
        "institution_id": institution.plaid_institution_id,
        "institution_name": institution.name,
        "webhook": record.get("webhook"),  # None until a link token or an update sets one
        "auth_method": None,
        "error": None,
        "available_products": ["balance"],
        "billed_products": ["investments"],
        "products": ["investments"],
        "consented_products": ["investments"],
        "consent_expiration_time": None,
        "update_type": "background",
    }


def institution(record: Institution) -> dict[str, Any]:
    return {
        "institution_id": record.plaid_institution_id,
        "name": record.name,
        "products": ["investments"],
        "country_codes": ["US"],
        "url": record.url,
        "primary_color": record.primary_color,
        "logo": None,
        "routing_numbers": [],
        "dtc_numbers": [],
        "oauth": False,
        "connection_availability": "SUPPORTED",
    }


def accounts_of(state: dict[str, Any], record: dict[str, Any]) -> list[tuple[AccountTemplate, str]]:
    """An Item's accounts: each demo account, as the state's overrides leave it, with its id."""
    institution = PLAID_INSTITUTIONS[record["institution"]]
    return [(current_account(state, a), record["account_ids"][a.key]) for a in institution.accounts]
