"""Income over a period: dividends and interest earned, fees, taxes and commissions paid,
per account, per month and in total, natively and in the base currency, each amount
converted at the rate of its own date. A currency without a rate is listed, never added
at 1:1."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from core.errors import InvalidInput
from services.activities.requests import checked_span
from services.fx import RateHistory

PERIODS = (
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "year_to_date",
    "last_12_months",
)
ALIASES = {
    "month": "this_month",
    "quarter": "this_quarter",
    "year": "this_year",
    "ytd": "year_to_date",
}
CATEGORIES = ("dividends", "interest", "fees", "taxes", "commissions")
INCOME = ("dividends", "interest")
COSTS = ("fees", "taxes", "commissions")


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_before(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def resolve_period(
    period: Any, start_date: Any, end_date: Any, today: date
) -> tuple[str, date, date]:
    """(name, first day, last day) of what was asked: a named period or a date range."""
    if start_date is not None or end_date is not None:
        if period not in (None, "", "custom"):
            raise InvalidInput(
                "give either period or start_date/end_date, not both", field="period"
            )
        start, end = checked_span(start_date, end_date)
        return "custom", start or date(today.year, 1, 1), end or today
    name = ALIASES.get(period, period) if isinstance(period, str) else period
    name = name or "year_to_date"
    if name not in PERIODS:
        raise InvalidInput(
            f"unknown period {str(period)[:40]!r}: allowed values are {', '.join(PERIODS)} "
            "(also month, quarter, year, ytd), or give start_date and end_date (YYYY-MM-DD)",
            field="period",
        )
    month, quarter = today.replace(day=1), _quarter_start(today)
    spans = {
        "this_month": (month, today),
        "last_month": (_month_before(today), month - timedelta(days=1)),
        "this_quarter": (quarter, today),
        "last_quarter": (_quarter_start(quarter - timedelta(days=1)), quarter - timedelta(days=1)),
        "this_year": (date(today.year, 1, 1), today),
        "year_to_date": (date(today.year, 1, 1), today),
        "last_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
        "last_12_months": (today - timedelta(days=365), today),
    }
    start, end = spans[name]
    return name, start, end


def category(row: dict[str, Any]) -> list[tuple[str, float]]:
    """What a row adds to which category, as a positive amount (a fee paid is +)."""
    amount = row.get("amount") or 0.0
    kind = row["type"]
    parts: list[tuple[str, float]] = []
    if kind == "dividend":
        parts.append(("dividends", amount))
    elif kind == "interest":
        parts.append(("interest", amount))
    elif kind == "fee":
        parts.append(("fees", -amount))
    elif kind == "tax":
        parts.append(("taxes", -amount))
    if kind in ("buy", "sell") and row.get("fee"):
        parts.append(("commissions", abs(row["fee"])))
    return parts


class _Sums:
    def __init__(self) -> None:
        self.native: dict[str, dict[str, float]] = {c: defaultdict(float) for c in CATEGORIES}
        self.base: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)

    def add(self, name: str, currency: str, amount: float, in_base: float | None) -> None:
        self.native[name][currency] += amount
        if in_base is not None:
            self.base[name] += in_base

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: {
                "native": {c: round(a, 2) for c, a in sorted(self.native[name].items())},
                "base": round(self.base[name], 2),
            }
            for name in CATEGORIES
        }
        income = sum(self.base[n] for n in INCOME)
        costs = sum(self.base[n] for n in COSTS)
        out |= {
            "income_base": round(income, 2),
            "costs_base": round(costs, 2),
            "net_base": round(income - costs, 2),
        }
        return out


def income_report(rows: Iterable[dict[str, Any]], rates: RateHistory, base: str) -> dict[str, Any]:
    total = _Sums()
    accounts: dict[tuple[str, str], tuple[dict[str, Any], _Sums]] = {}
    months: dict[str, _Sums] = {}
    used: dict[str, dict[str, Any]] = {}
    unconverted: dict[str, float] = defaultdict(float)
    count = 0
    for row in rows:
        parts = category(row)
        if not parts:
            continue
        count += 1
        day, currency = row["trade_date"], row["currency"]
        account_key = (row["provider"], row["account_id"])
        account = accounts.setdefault(
            account_key,
            (
                {
                    "provider": row["provider"],
                    "institution": row["institution"],
                    "account_id": row["account_id"],
                    "account_name": row["account_name"],
                },
                _Sums(),
            ),
        )
        month = months.setdefault(day.strftime("%Y-%m"), _Sums())
        for name, amount in parts:
            converted = _in_base(amount, currency, base, day, rates, used)
            if converted is None:
                unconverted[currency] += amount
            for sums in (total, account[1], month):
                sums.add(name, currency, amount, converted)
    return {
        "base_currency": base,
        "totals": total.to_dict(),
        "by_account": [
            {**who, **sums.to_dict()}
            for who, sums in sorted(
                accounts.values(), key=lambda a: (a[0]["institution"], a[0]["account_id"])
            )
        ],
        "by_month": [
            {"month": name, **{c: round(s.base[c], 2) for c in CATEGORIES}}
            for name, s in sorted(months.items())
        ],
        "activity_count": count,
        "fx": {
            "base_currency": base,
            "rates": sorted(used.values(), key=lambda r: r["pair"]),
            "unconverted": {c: round(a, 2) for c, a in sorted(unconverted.items())},
            "warnings": [
                f"no exchange rate to {base} for {currency}: {amount:,.2f} {currency} is "
                f"left out of every {base} total and shown in its own currency"
                for currency, amount in sorted(unconverted.items())
            ],
        },
    }


def _in_base(
    amount: float,
    currency: str,
    base: str,
    day: date,
    rates: RateHistory,
    used: dict[str, dict[str, Any]],
) -> float | None:
    if currency == base:
        return amount
    converted = rates.convert(amount, currency, base, day)
    if converted is None:
        return None
    value, source, target = converted
    entry = used.setdefault(
        currency,
        {
            "pair": f"{currency}/{base}",
            "first_date": day.isoformat(),
            "last_date": day.isoformat(),
            "conversions": 0,
            "sources": [],
        },
    )
    entry["first_date"] = min(entry["first_date"], day.isoformat())
    entry["last_date"] = max(entry["last_date"], day.isoformat())
    entry["conversions"] += 1
    for quote in (source, target):
        if quote.source != "definition" and quote.source not in entry["sources"]:
            entry["sources"].append(quote.source)
    return value
