"""The ``holdings`` format: one row per security across every account and provider.

Rows are the positions counted in the totals (an institution reachable through both
providers counts once, from the provider first in ``PROVIDER_PRIORITY``), grouped by
the security's stable identifier (FIGI, ISIN or CUSIP) where a provider gives one, else by
ticker and currency (a security without a ticker by its name; cash by currency), with
the accounts that hold it. A holding's gain is known only when every part of it has a
known cost basis: otherwise it is "unknown", and its accounts show which part lacks one.
"""

from __future__ import annotations

from typing import Any

from services.fx import Converter
from services.positions.gains import UNKNOWN, has_gain, known_basis


def holding_keys(counted: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each position's holding: its security's stable identifier where a provider gave one
    (the same FIGI from Plaid and SnapTrade), else its ticker (or name) and currency. A row
    without an identifier joins the identified holding of its ticker and currency, so one
    provider leaving the identifier out does not split a holding in two."""
    by_ticker: dict[tuple[str, str], str] = {}
    for p in counted:
        if p.get("security_id") and p["security_type"] != "cash":
            by_ticker.setdefault(_ticker_key(p), p["security_id"])
    keys = []
    for p in counted:
        if p["security_type"] == "cash":
            keys.append((f"cash:{p['currency']}", p["currency"]))
            continue
        identifier = p.get("security_id") or by_ticker.get(_ticker_key(p))
        keys.append((identifier, p["currency"]) if identifier else _ticker_key(p))
    return keys


def _ticker_key(position: dict[str, Any]) -> tuple[str, str]:
    name = position.get("ticker") or position.get("name") or "?"
    return f"ticker:{str(name).upper()}", position["currency"]


def holdings(counted: list[dict[str, Any]], fx: Converter) -> list[dict[str, Any]]:
    """Every security held, the largest (in the base currency) first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, p in zip(holding_keys(counted), counted, strict=True):
        groups.setdefault(key, []).append(p)
    rows = [_holding(parts, fx) for parts in groups.values()]
    rows.sort(
        key=lambda h: (h["market_value_base"] is None, -(h["market_value_base"] or 0.0)),
    )
    return rows


def _holding(parts: list[dict[str, Any]], fx: Converter) -> dict[str, Any]:
    first = parts[0]
    currency = first["currency"]
    quantity = round(sum(p["quantity"] for p in parts), 6)
    values = [p.get("market_value") for p in parts]
    value = (
        round(sum(v for v in values if v is not None), 2)
        if any(v is not None for v in values)
        else None
    )
    row: dict[str, Any] = {
        "security_id": next((p["security_id"] for p in parts if p.get("security_id")), None),
        "ticker": first.get("ticker"),
        "name": first.get("name"),
        "security_type": first["security_type"],
        "currency": currency,
        "quantity": quantity,
        "price": round(value / quantity, 6) if value is not None and quantity else None,
        "market_value": value,
        "market_value_base": _round(fx.to_base(value, currency)),
    }
    if not has_gain(first):  # cash: no gain, neither known nor unknown
        row |= {
            "cost_basis": None,
            "unrealized_gain": None,
            "gain_percent": None,
            "unrealized_gain_base": None,
        }
    else:
        bases = [known_basis(p) for p in parts]
        if value is None or any(b is None for b in bases):
            row |= {"cost_basis": UNKNOWN, "unrealized_gain": UNKNOWN, "gain_percent": UNKNOWN}
            row["unrealized_gain_base"] = UNKNOWN
        else:
            basis = sum(b for b in bases if b is not None)
            gain = value - basis
            gain_base = fx.to_base(gain, currency)
            row |= {
                "cost_basis": round(basis, 2),
                "unrealized_gain": round(gain, 2),
                "gain_percent": round(gain / basis * 100, 2) if basis else None,
                "unrealized_gain_base": _round(gain_base),  # None: no rate (see fx)
            }
    row["accounts"] = [
        {
            "provider": p["provider"],
            "institution": p["institution"],
            "account_id": p["account_id"],
            "account_name": p.get("account_name"),
            "quantity": p["quantity"],
            "market_value": p.get("market_value"),
            "cost_basis": p.get("cost_basis") if known_basis(p) is not None else None,
        }
        for p in parts
    ]
    row["account_count"] = len(parts)
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
