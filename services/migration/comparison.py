"""Do two providers describe the same holdings at one institution?

Tickers must match and quantities agree within a relative tolerance; cash is
compared per currency. Money-market funds are folded into cash on both sides,
because one provider may report a sweep fund as cash and the other as a
holding. Prices and values are reported, never gated: they move with the
market and each provider prices at its own moment.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

CASH_LIKE = ("cash", "money_market")


@dataclass
class Comparison:
    matches: bool
    differences: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"matches": self.matches, "differences": self.differences, "rows": self.rows}


def _fold(positions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    folded: dict[str, dict[str, float]] = defaultdict(lambda: {"quantity": 0.0, "value": 0.0})
    for p in positions:
        if p["security_type"] in CASH_LIKE:
            key = f"cash {p['currency']}"
            amount = p["market_value"] if p["market_value"] is not None else p["quantity"]
            folded[key]["quantity"] += amount
            folded[key]["value"] += amount
        else:
            key = str(p["ticker"] or p["name"])
            folded[key]["quantity"] += p["quantity"]
            folded[key]["value"] += p["market_value"] or 0.0
    return folded


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-9)


def compare_holdings(
    source: list[dict[str, Any]],
    target: list[dict[str, Any]],
    *,
    source_name: str,
    target_name: str,
    tolerance: float = 0.0001,
) -> Comparison:
    left, right = _fold(source), _fold(target)
    result = Comparison(matches=True)
    if not left or not right:
        result.matches = False
        empty = source_name if not left else target_name
        result.differences.append(f"{empty} shows no holdings at this institution")
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key), right.get(key)
        row: dict[str, Any] = {
            "holding": key,
            f"{source_name}_quantity": round(a["quantity"], 6) if a else None,
            f"{target_name}_quantity": round(b["quantity"], 6) if b else None,
            f"{source_name}_value": round(a["value"], 2) if a else None,
            f"{target_name}_value": round(b["value"], 2) if b else None,
        }
        if a is None or b is None:
            missing = target_name if b is None else source_name
            result.differences.append(f"{key}: missing at {missing}")
            row["ok"] = False
        elif not _close(a["quantity"], b["quantity"], tolerance):
            result.differences.append(
                f"{key}: {source_name} {a['quantity']:g} vs {target_name} {b['quantity']:g}"
            )
            row["ok"] = False
        else:
            row["ok"] = True
        result.rows.append(row)
    result.matches = result.matches and not any(not r["ok"] for r in result.rows)
    return result
