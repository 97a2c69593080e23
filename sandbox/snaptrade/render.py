"""SnapTrade's JSON shapes for the demo data: symbols, brokerages, connections,
accounts, positions, and the decimal strings SnapTrade uses for quantities.
"""

from __future__ import annotations

from typing import Any

from sandbox.data import (
    ALL_ACCOUNTS,
    CURRENCY_NAMES,
    PRICES_AS_OF,
    PRICES_AS_OF_DATETIME,
    SNAPTRADE_BROKERAGES,
    SNAPTRADE_LOGO_BASE_URL,
    AccountTemplate,
    Holding,
    Institution,
    demo_figi,
    stable_uuid,
)
from sandbox.overrides import described

_INSTRUMENT_KINDS = {
    "equity": "stock",
    "etf": "etf",
    "mutual fund": "mutualfund",
    "money market": "mutualfund",
}
_SECURITY_TYPE_CODES = {"equity": "cs", "etf": "et", "mutual fund": "oef", "money market": "oef"}
_EXCHANGES = {
    "XNAS": ("NASDAQ", "Nasdaq"),
    "XNYS": ("NYSE", "New York Stock Exchange"),
    "ARCX": ("ARCA", "NYSE Arca"),
}


def decimal(value: float) -> str:
    """SnapTrade's decimal strings: no exponent, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def currency(code: str) -> dict[str, Any]:
    return {
        "id": stable_uuid("currency", code),
        "code": code,
        "name": CURRENCY_NAMES.get(code, code),
    }


def symbol_id(ticker: str) -> str:
    return stable_uuid("symbol", ticker)


def universe(state: dict[str, Any] | None = None) -> dict[str, Holding]:
    """Every security in the demo data, by universal symbol id (described as ``state`` says)."""
    securities = {symbol_id(h.ticker): h for a in ALL_ACCOUNTS for h in a.holdings}
    if state is None:
        return securities
    return {key: described(state, holding) for key, holding in securities.items()}


def _exchange(mic: str) -> dict[str, Any]:
    code, name = _EXCHANGES[mic]
    return {
        "id": stable_uuid("exchange", mic),
        "code": code,
        "mic_code": mic,
        "name": name,
        "timezone": "America/New_York",
        "start_time": "09:30:00",
        "close_time": "16:00:00",
        "suffix": None,
    }


def universal_symbol(holding: Holding) -> dict[str, Any]:
    symbol: dict[str, Any] = {
        "id": symbol_id(holding.ticker),
        "symbol": holding.ticker,
        "raw_symbol": holding.ticker,
        "description": holding.name,
        "currency": currency(holding.currency),
        "type": {
            "id": stable_uuid("security-type", _SECURITY_TYPE_CODES[holding.kind]),
            "code": _SECURITY_TYPE_CODES[holding.kind],
            "description": holding.kind.title(),
            "is_supported": True,
        },
        "figi_code": demo_figi(holding.ticker),
        "figi_instrument": {"figi_code": demo_figi(holding.ticker), "figi_share_class": None},
        "currencies": [currency(holding.currency)],
    }
    if holding.mic:
        symbol["exchange"] = _exchange(holding.mic)
    return symbol


def _brokerage(institution: Institution) -> dict[str, Any]:
    return {
        "id": institution.snaptrade_brokerage_id,
        "slug": institution.slug.upper(),
        "name": institution.name,
        "display_name": institution.name,
        "description": f"{institution.name} (emulated)",
        "aws_s3_logo_url": f"{SNAPTRADE_LOGO_BASE_URL}/{institution.slug}-logo.png",
        "aws_s3_square_logo_url": None,
        "url": institution.url,
        "enabled": True,
        "maintenance_mode": False,
        "is_degraded": False,
        "allows_trading": True,
        "allows_fractional_units": True,
        "has_reporting": True,
        "is_real_time_connection": False,
        "brokerage_type": {
            "id": stable_uuid("brokerage-type", "traditional"),
            "name": "Traditional Brokerage",
        },
        "exchanges": [],
        "open_url": None,
    }


def authorization(auth: dict[str, Any]) -> dict[str, Any]:
    institution = SNAPTRADE_BROKERAGES[auth["brokerage"]]
    return {
        "id": auth["id"],
        "created_date": auth["created_date"],
        "updated_date": auth["created_date"],
        "brokerage": _brokerage(institution),
        "name": institution.name,
        "type": auth["type"],
        "disabled": auth["disabled"],
        "disabled_date": auth["disabled_date"],
        "meta": {},
        "is_eligible_for_payout": False,
        "data_freshness_mode": "realtime",
    }


def sync_status() -> dict[str, Any]:
    return {
        "transactions": {
            "initial_sync_completed": True,
            "last_successful_sync": PRICES_AS_OF,
            "first_transaction_date": "2024-01-02",
        },
        "holdings": {
            "initial_sync_completed": True,
            "last_successful_sync": PRICES_AS_OF_DATETIME,
            "holdings_unavailable": False,
        },
    }


def account(auth: dict[str, Any], template: AccountTemplate, account_id: str) -> dict[str, Any]:
    institution = SNAPTRADE_BROKERAGES[auth["brokerage"]]
    return {
        "id": account_id,
        "brokerage_authorization": auth["id"],
        "name": f"{institution.name} {template.name}",
        "number": template.number,
        "institution_account_id": template.number,
        "institution_name": institution.name,
        "created_date": auth["created_date"],
        "funding_date": None,
        "opening_date": None,
        "sync_status": sync_status(),
        "balance": {"total": {"amount": template.total_value_usd(), "currency": "USD"}},
        "status": "open",
        "raw_type": "Margin" if template.subtype == "brokerage" else "IRA",
        "account_category": "INVESTMENT",
        "meta": {
            "type": template.subtype,
            "status": "ACTIVE",
            "institution_name": institution.name,
        },
        "portfolio_group": stable_uuid("portfolio-group", account_id),
        "cash_restrictions": [],
        "is_paper": False,
    }


def position(holding: Holding) -> dict[str, Any]:
    return {
        "instrument": {
            "kind": _INSTRUMENT_KINDS[holding.kind],
            "id": symbol_id(holding.ticker),
            "symbol": holding.ticker,
            "raw_symbol": holding.ticker,
            "description": holding.name,
            "currency": holding.currency,
            "exchange": holding.mic,
            "figi_instrument": {"figi_code": demo_figi(holding.ticker), "figi_share_class": None},
        },
        "units": decimal(holding.quantity),
        "price": decimal(holding.price),
        # SnapTrade's cost_basis is the average price per unit (Plaid's is the total).
        "cost_basis": None
        if holding.cost_basis is None
        else decimal(round(holding.cost_basis / holding.quantity, 4)),
        "currency": holding.currency,
        "cash_equivalent": holding.cash_equivalent,
        "tax_lots": [],
    }
