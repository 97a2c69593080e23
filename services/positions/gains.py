"""Values in the base currency and unrealized gains, per position and summed, honestly.

A gain needs a cost basis. A missing basis, or a zero basis under a position that is
worth something, is *unknown*: such a gain is shown as "unknown", never as zero, and
never added into a sum. Sums cover the positions whose basis is known, and say what
share of the value they leave out. Cash has no gain (it is neither known nor unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.fx import Converter

UNKNOWN = "unknown"


def has_gain(position: dict[str, Any]) -> bool:
    return position["security_type"] != "cash"


def known_basis(position: dict[str, Any]) -> float | None:
    """The cost basis when it can be trusted; None when it is missing or a stand-in zero."""
    basis = position.get("cost_basis")
    if basis is None:
        return None
    if basis == 0 and (position.get("market_value") or 0) != 0:
        return None
    return float(basis)


def with_gain(position: dict[str, Any], fx: Converter) -> dict[str, Any]:
    """The position with its value in the base currency and its gain, native and base."""
    value, currency = position.get("market_value"), position["currency"]
    value_base = fx.to_base(value, currency)
    row = {**position, "market_value_base": _round(value_base)}
    if not has_gain(position):
        return {**row, "unrealized_gain": None, "gain_percent": None, "unrealized_gain_base": None}
    basis = known_basis(position)
    if basis is None or value is None:
        return {
            **row,
            "unrealized_gain": UNKNOWN,
            "gain_percent": UNKNOWN,
            "unrealized_gain_base": UNKNOWN,
        }
    gain = value - basis
    gain_base = fx.to_base(gain, currency)
    return {
        **row,
        "unrealized_gain": round(gain, 2),
        "gain_percent": round(gain / basis * 100, 2) if basis else None,
        "unrealized_gain_base": _round(gain_base),  # None: no rate (see fx)
    }


def gains_total(positions: Iterable[dict[str, Any]], fx: Converter) -> dict[str, Any]:
    """The gain of a group in the base currency, over the positions whose basis is known,
    and the share of the group's (non-cash) value whose basis is unknown."""
    cost = value_known = value_unknown = 0.0
    unknown_count = 0
    unconverted: set[str] = set()
    for p in positions:
        if not has_gain(p):
            continue
        value_base = fx.to_base(p.get("market_value"), p["currency"])
        if value_base is None:
            if p.get("market_value") is not None:
                unconverted.add(p["currency"])
            continue
        basis = known_basis(p)
        basis_base = fx.to_base(basis, p["currency"]) if basis is not None else None
        if basis_base is None:
            value_unknown += value_base
            unknown_count += 1
        else:
            cost += basis_base
            value_known += value_base
    invested = value_known + value_unknown
    gain = value_known - cost
    return {
        "currency": fx.base,
        "cost_basis": round(cost, 2),
        "value_with_known_basis": round(value_known, 2),
        "unrealized_gain": round(gain, 2),
        "gain_percent": round(gain / cost * 100, 2) if cost else None,
        "value_with_unknown_basis": round(value_unknown, 2),
        "unknown_basis_share": round(value_unknown / invested, 4) if invested else 0.0,
        "positions_with_unknown_basis": unknown_count,
        "unconverted_currencies": sorted(unconverted),
    }


def base_total(native: dict[str, float], fx: Converter) -> float:
    """A per-currency total in the base currency (currencies without a rate left out)."""
    return fx.total(native)[0]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
