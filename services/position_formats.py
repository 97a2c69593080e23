"""The shapes of the positions answer, built from the cached rows of one cache generation.

Money is never summed across currencies: every total is per currency, because
converting would need an FX rate we do not have and would be a guess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.overlaps import find_overlaps

TOP_HOLDINGS = 10


class PortfolioView:
    """Every format of one cache generation. Built once, then served to every read of it;
    the parts a format needs are made on its first use."""

    def __init__(self, rows: list[dict[str, Any]], priority: tuple[str, ...]) -> None:
        overlaps, duplicates = find_overlaps(rows, priority)
        self.positions = [
            {**json_position(p), "duplicate": (p["provider"], p["account_id"]) in duplicates}
            for p in rows
        ]
        # Every total counts an institution reachable through both providers once.
        self.counted = [p for p in self.positions if not p["duplicate"]]
        self.totals = totals_by_currency(self.counted)
        self.overlaps = [overlap.to_dict() for overlap in overlaps]
        self._summary: dict[str, Any] | None = None
        self._list_rows: list[dict[str, Any]] | None = None
        self._by_account: dict[int | None, list[dict[str, Any]]] = {}

    @property
    def position_count(self) -> int:
        return len(self.counted)

    def summary(self) -> dict[str, Any]:
        if self._summary is None:
            self._summary = summary_of(self.counted)
        return self._summary

    def list_rows(self) -> list[dict[str, Any]]:
        if self._list_rows is None:
            self._list_rows = [
                {
                    "ticker": p["ticker"] or p["name"],
                    "quantity": p["quantity"],
                    "value": p["market_value"],
                    "currency": p["currency"],
                    **({"duplicate": True} if p["duplicate"] else {}),
                }
                for p in self.positions
            ]
        return self._list_rows

    def by_account(self, positions_per_account: int | None) -> list[dict[str, Any]]:
        if positions_per_account not in self._by_account:
            self._by_account[positions_per_account] = by_account(
                self.positions, positions_per_account
            )
        return self._by_account[positions_per_account]


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def json_position(position: dict[str, Any]) -> dict[str, Any]:
    row = dict(position)
    del row["user_email"]
    for key in ("as_of", "fetched_at"):
        row[key] = iso(row.get(key))
    return row


def _value(position: dict[str, Any]) -> float:
    return abs(position["market_value"] or 0.0)


def add_money(totals: dict[str, float], currency: str, value: float | None) -> None:
    totals[currency] = round(totals.get(currency, 0.0) + (value or 0.0), 2)


def totals_by_currency(positions: Iterable[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for p in positions:
        add_money(totals, p["currency"], p["market_value"])
    return dict(sorted(totals.items()))


def grouped_totals(positions: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for p in positions:
        add_money(groups[str(p[key])], p["currency"], p["market_value"])
    return {name: dict(sorted(t.items())) for name, t in sorted(groups.items())}


def summary_of(positions: list[dict[str, Any]]) -> dict[str, Any]:
    holdings: dict[tuple[str, str], dict[str, Any]] = {}
    for p in positions:
        if p["security_type"] == "cash":
            continue
        key = (p["ticker"] or p["name"] or "?", p["currency"])
        entry = holdings.setdefault(
            key,
            {
                "ticker": key[0],
                "name": p["name"],
                "currency": key[1],
                "quantity": 0.0,
                "value": 0.0,
            },
        )
        entry["quantity"] = round(entry["quantity"] + p["quantity"], 6)
        entry["value"] = round(entry["value"] + (p["market_value"] or 0.0), 2)
    top = sorted(holdings.values(), key=lambda h: h["value"], reverse=True)[:TOP_HOLDINGS]
    return {
        "totals": totals_by_currency(positions),
        "by_provider": grouped_totals(positions, "provider"),
        "by_institution": grouped_totals(positions, "institution"),
        "by_security_type": grouped_totals(positions, "security_type"),
        "by_currency": totals_by_currency(positions),
        "top_holdings": top,
        "account_count": len({(p["provider"], p["account_id"]) for p in positions}),
    }


def by_account(
    positions: list[dict[str, Any]], positions_per_account: int | None
) -> list[dict[str, Any]]:
    """Accounts under provider and institution, each with its totals and (at most
    ``positions_per_account`` of, the largest first) its positions."""
    tree: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for p in positions:
        tree.setdefault(p["provider"], {}).setdefault(p["institution"], {}).setdefault(
            p["account_id"], []
        ).append(p)
    providers = []
    for provider, institutions in tree.items():
        institution_list = []
        for institution, accounts in sorted(institutions.items()):
            account_list = []
            for account_id, rows in accounts.items():
                first = rows[0]
                shown = rows
                if positions_per_account is not None and len(rows) > positions_per_account:
                    shown = sorted(rows, key=_value, reverse=True)[:positions_per_account]
                account_list.append(
                    {
                        "account_id": account_id,
                        "duplicate": first["duplicate"],
                        "name": first["account_name"],
                        "type": first["account_type"],
                        "mask": first["account_mask"],
                        "positions": [
                            {
                                k: r[k]
                                for k in (
                                    "ticker",
                                    "name",
                                    "security_type",
                                    "quantity",
                                    "price",
                                    "market_value",
                                    "cost_basis",
                                    "currency",
                                    "as_of",
                                )
                            }
                            for r in shown
                        ],
                        "position_count": len(rows),
                        "more_positions": len(rows) - len(shown),
                        "totals": totals_by_currency(rows),
                    }
                )
            institution_rows = [r for rows in accounts.values() for r in rows]
            institution_list.append(
                {
                    "institution": institution,
                    "accounts": account_list,
                    "totals": totals_by_currency(institution_rows),
                }
            )
        provider_rows = [r for accts in institutions.values() for rs in accts.values() for r in rs]
        providers.append(
            {
                "provider": provider,
                "institutions": institution_list,
                "totals": totals_by_currency(provider_rows),
            }
        )
    return providers
