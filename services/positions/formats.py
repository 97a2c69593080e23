"""The shapes of the positions answer, built from the cached rows of one cache generation
and the exchange rates of one rates version.

Money is never summed across currencies without a rate: every total is per currency
(``totals``), and beside it in the base currency (``base_total``) through the rates the
``fx`` block lists; an amount without a rate stays out of the base total, said aloud.
Gains follow ``services.positions.gains``: unknown is never zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.fx import Converter
from services.positions.gains import gains_total, with_gain
from services.positions.holdings import holdings
from services.positions.overlaps import find_overlaps

TOP_HOLDINGS = 10


class PortfolioView:
    """Every format of one cache generation. Built once, then served to every read of it;
    the parts a format needs are made on its first use."""

    def __init__(
        self, rows: list[dict[str, Any]], priority: tuple[str, ...], fx: Converter
    ) -> None:
        overlaps, duplicates = find_overlaps(rows, priority)
        self.fx_converter = fx
        self.positions = [
            with_gain(
                {**json_position(p), "duplicate": (p["provider"], p["account_id"]) in duplicates},
                fx,
            )
            for p in rows
        ]
        # Every total counts an institution reachable through both providers once.
        self.counted = [p for p in self.positions if not p["duplicate"]]
        self.totals = totals_by_currency(self.counted)
        self.base_total, unconverted = fx.total(self.totals)
        self.fx = fx.report(self.totals, unconverted)
        self.gains = gains_total(self.counted, fx)
        self.overlaps = [overlap.to_dict() for overlap in overlaps]
        self._summary: dict[str, Any] | None = None
        self._list_rows: list[dict[str, Any]] | None = None
        self._holdings: list[dict[str, Any]] | None = None
        self._by_account: dict[int | None, list[dict[str, Any]]] = {}

    @property
    def position_count(self) -> int:
        return len(self.counted)

    def summary(self) -> dict[str, Any]:
        if self._summary is None:
            self._summary = summary_of(self.counted, self.fx_converter)
        return self._summary

    def holdings(self) -> list[dict[str, Any]]:
        if self._holdings is None:
            self._holdings = holdings(self.counted, self.fx_converter)
        return self._holdings

    def list_rows(self) -> list[dict[str, Any]]:
        if self._list_rows is None:
            self._list_rows = [
                {
                    "ticker": p["ticker"] or p["name"],
                    "quantity": p["quantity"],
                    "value": p["market_value"],
                    "currency": p["currency"],
                    "value_base": p["market_value_base"],
                    "gain": p["unrealized_gain"],
                    **({"duplicate": True} if p["duplicate"] else {}),
                }
                for p in self.positions
            ]
        return self._list_rows

    def by_account(self, positions_per_account: int | None) -> list[dict[str, Any]]:
        if positions_per_account not in self._by_account:
            self._by_account[positions_per_account] = by_account(
                self.positions, positions_per_account, self.fx_converter
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


def _base_value(position: dict[str, Any]) -> float:
    """Its size for ranking accounts across currencies (unconverted when no rate is known)."""
    return abs(position.get("market_value_base") or position["market_value"] or 0.0)


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


def in_base(groups: dict[str, dict[str, float]], fx: Converter) -> dict[str, float]:
    return {name: fx.total(native)[0] for name, native in groups.items()}


def summary_of(positions: list[dict[str, Any]], fx: Converter) -> dict[str, Any]:
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
    for entry in holdings.values():
        value_base = fx.to_base(entry["value"], entry["currency"])
        entry["value_base"] = None if value_base is None else round(value_base, 2)
    # The largest in the base currency; one without a rate after those with one.
    top = sorted(
        holdings.values(),
        key=lambda h: (h["value_base"] is not None, h["value_base"] or h["value"]),
        reverse=True,
    )[:TOP_HOLDINGS]
    by_provider = grouped_totals(positions, "provider")
    by_institution = grouped_totals(positions, "institution")
    by_security_type = grouped_totals(positions, "security_type")
    totals = totals_by_currency(positions)
    return {
        "totals": totals,
        "base_total": fx.total(totals)[0],
        "by_provider": by_provider,
        "by_provider_base": in_base(by_provider, fx),
        "by_institution": by_institution,
        "by_institution_base": in_base(by_institution, fx),
        "by_security_type": by_security_type,
        "by_security_type_base": in_base(by_security_type, fx),
        "by_currency": totals,
        # Each currency's total in the base currency; None for one without a rate.
        "by_currency_base": {c: _rounded(fx.to_base(amount, c)) for c, amount in totals.items()},
        "gains": gains_total(positions, fx),
        "top_holdings": top,
        "account_count": len({(p["provider"], p["account_id"]) for p in positions}),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ``by_account`` at any portfolio size: the largest accounts, sharing a fixed number of
# positions, keep the answer well inside what an MCP client accepts.
ACCOUNTS_SHOWN = 50
POSITIONS_SHOWN = 100


def by_account(
    positions: list[dict[str, Any]], positions_per_account: int | None, fx: Converter
) -> list[dict[str, Any]]:
    """Accounts under provider and institution, each with its totals and (at most
    ``positions_per_account`` of, the largest first) its positions.

    Bounded at any size when ``positions_per_account`` is given: at most ``ACCOUNTS_SHOWN``
    accounts (the largest) are listed, and their positions share ``POSITIONS_SHOWN``
    places; each institution counts the accounts it does not list (``more_accounts``),
    and every total still counts every position."""
    tree: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for p in positions:
        tree.setdefault(p["provider"], {}).setdefault(p["institution"], {}).setdefault(
            p["account_id"], []
        ).append(p)
    listed: set[tuple[str, str, str]] | None = None
    if positions_per_account is not None:
        values = {
            (provider, institution, account_id): sum(_base_value(r) for r in rows)
            for provider, institutions in tree.items()
            for institution, accounts in institutions.items()
            for account_id, rows in accounts.items()
        }
        listed = set(sorted(values, key=lambda key: values[key], reverse=True)[:ACCOUNTS_SHOWN])
        positions_per_account = min(
            positions_per_account, max(1, POSITIONS_SHOWN // max(1, len(listed)))
        )
    providers = []
    for provider, institutions in tree.items():
        institution_list = []
        for institution, accounts in sorted(institutions.items()):
            account_list = []
            for account_id, rows in accounts.items():
                if listed is not None and (provider, institution, account_id) not in listed:
                    continue
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
                                    "market_value_base",
                                    "unrealized_gain",
                                    "gain_percent",
                                )
                            }
                            for r in shown
                        ],
                        "position_count": len(rows),
                        "more_positions": len(rows) - len(shown),
                        **group_totals(rows, fx),
                    }
                )
            institution_rows = [r for rows in accounts.values() for r in rows]
            institution_list.append(
                {
                    "institution": institution,
                    "accounts": account_list,
                    "more_accounts": len(accounts) - len(account_list),
                    **group_totals(institution_rows, fx),
                }
            )
        provider_rows = [r for accts in institutions.values() for rs in accts.values() for r in rs]
        providers.append(
            {
                "provider": provider,
                "institutions": institution_list,
                **group_totals(provider_rows, fx),
            }
        )
    return providers


def group_totals(rows: list[dict[str, Any]], fx: Converter) -> dict[str, Any]:
    """A group's totals: per currency, in the base currency, and its gain."""
    totals = totals_by_currency(rows)
    return {"totals": totals, "base_total": fx.total(totals)[0], "gains": gains_total(rows, fx)}
