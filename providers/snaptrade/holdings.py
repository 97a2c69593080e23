"""SnapTrade accounts, positions and balances normalized into positions (cash one row per
currency)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import MalformedResponse
from core.normalized import NormalizedPosition, security_identifier
from core.numbers import finite_number
from providers.snaptrade.accounts import fetch_snaptrade_holdings
from providers.snaptrade.errors import PROVIDER

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

# ``instrument.kind`` of a /positions/all position -> our security type.
INSTRUMENT_KINDS = {
    "stock": "equity",
    "adr": "equity",
    "etf": "etf",
    "mutualfund": "mutual_fund",
    "cef": "mutual_fund",
    "crypto": "crypto",
    "option": "option",
    "future": "other",
    "cfd": "other",
    "other": "other",
}


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _currency_code(value: Any, default: str = "USD") -> str:
    if isinstance(value, dict):
        return str(value.get("code") or default)
    if isinstance(value, str) and value:
        return value
    return default


def _security_type(position: dict[str, Any], instrument: dict[str, Any]) -> str:
    kind = str(instrument.get("kind") or "").lower()
    # SnapTrade flags money-market funds as cash-equivalent mutual funds.
    if kind == "mutualfund" and position.get("cash_equivalent"):
        return "money_market"
    return INSTRUMENT_KINDS.get(kind, "other")


def _account_fields(account: dict[str, Any]) -> dict[str, Any]:
    number = str(account.get("number") or "")
    meta = account.get("meta") or {}
    return {
        "account_id": str(account.get("id")),
        "account_name": account.get("name"),
        "account_type": (meta.get("type") if isinstance(meta, dict) else None)
        or account.get("raw_type"),
        "account_mask": number[-4:] if number else None,
    }


def normalize_snaptrade_holdings(
    holdings: dict[str, Any],
    *,
    user_email: str = "",
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """SnapTrade accounts/positions/balances to normalized positions; cash one row per currency."""
    positions: list[NormalizedPosition] = []
    for entry in holdings.get("accounts", []):
        account = entry.get("account") or {}
        institution = str(account.get("institution_name") or "Unknown")
        fields = _account_fields(account)
        sync = (account.get("sync_status") or {}).get("holdings") or {}
        freshness = entry.get("data_freshness") or {}
        as_of = (
            _parse_time(freshness.get("as_of"))
            or _parse_time(sync.get("last_successful_sync"))
            or fetched_at
        )
        for position in _iter_dicts(entry.get("positions"), "positions/all"):
            instrument = position.get("instrument")
            if not isinstance(instrument, dict):
                raise MalformedResponse(
                    "SnapTrade position without an instrument",
                    provider=PROVIDER,
                    endpoint="/accounts/{id}/positions/all",
                )
            quantity = finite_number(position.get("units"))
            if quantity is None:
                raise MalformedResponse(
                    "SnapTrade position without units",
                    provider=PROVIDER,
                    endpoint="/accounts/{id}/positions/all",
                )
            price = finite_number(position.get("price"))
            unit_cost = finite_number(position.get("cost_basis"))  # per share, per the spec
            positions.append(
                NormalizedPosition(
                    user_email=user_email,
                    provider=PROVIDER,
                    institution=institution,
                    ticker=instrument.get("symbol") or instrument.get("raw_symbol"),
                    name=instrument.get("description"),
                    security_type=_security_type(position, instrument),
                    quantity=quantity,
                    price=price,
                    market_value=round(quantity * price, 2) if price is not None else None,
                    cost_basis=round(quantity * unit_cost, 2) if unit_cost is not None else None,
                    currency=_currency_code(position.get("currency") or instrument.get("currency")),
                    as_of=as_of,
                    security_id=_security_id(instrument),
                    **fields,
                )
            )
        for balance in _iter_dicts(entry.get("balances"), "balances"):
            amount = finite_number(balance.get("cash"))
            if amount is None:
                continue
            currency = _currency_code(balance.get("currency"))
            positions.append(
                NormalizedPosition(
                    user_email=user_email,
                    provider=PROVIDER,
                    institution=institution,
                    ticker=None,
                    name=f"Cash ({currency})",
                    security_type="cash",
                    quantity=round(amount, 2),
                    price=1.0,
                    market_value=round(amount, 2),
                    cost_basis=None,
                    currency=currency,
                    as_of=as_of,
                    **fields,
                )
            )
    return positions


def _iter_dicts(value: Any, what: str) -> Iterable[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedResponse(
            f"SnapTrade {what} answer is not a list of objects", provider=PROVIDER, endpoint=what
        )
    return value


def load_snaptrade_positions(
    user_email: str,
    client: SnapTrade,
    *,
    user_secret: str,
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """Fetch and normalize every SnapTrade account of the user."""
    raw = fetch_snaptrade_holdings(user_email, client, user_secret=user_secret)
    return normalize_snaptrade_holdings(
        raw, user_email=user_email, fetched_at=fetched_at or datetime.now(UTC)
    )


def _security_id(instrument: dict[str, Any]) -> str | None:
    figi = instrument.get("figi_instrument")
    return security_identifier(figi=figi.get("figi_code") if isinstance(figi, dict) else None)
