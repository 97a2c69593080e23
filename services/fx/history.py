"""Rates over a span of days: each amount converted at the rate of its own date.

One query reads every stored rate of the currencies asked for, from a little before the
span (the newest rate on or before its first day) to its end; each lookup is then a
binary search, so income over two years of activity costs one query, not one per day.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import Connection, select

from services.fx.quotes import RateQuote
from services.models import FxRate

# The newest rate on or before a day is at most this far back (weekends, holidays).
REACH_BACK = timedelta(days=14)


class RateHistory:
    """The stored rates of some currencies over a span, for lookups by date."""

    def __init__(self, quotes: dict[str, list[RateQuote]]) -> None:
        self._quotes = quotes
        self._days = {c: [q.rate_date for q in qs] for c, qs in quotes.items()}

    def quote(self, currency: str, on: date) -> RateQuote | None:
        """The newest rate of ``currency`` on or before ``on`` (the euro is 1)."""
        if currency == "EUR":
            return RateQuote("EUR", 1.0, on, "definition")
        days = self._days.get(currency)
        if not days:
            return None
        index = bisect.bisect_right(days, on) - 1
        return self._quotes[currency][index] if index >= 0 else None

    def convert(
        self, amount: float, currency: str, base: str, on: date
    ) -> tuple[float, RateQuote, RateQuote] | None:
        """``amount`` in ``base`` at the rates of ``on``, with the two quotes used."""
        source, target = self.quote(currency, on), self.quote(base, on)
        if source is None or target is None or source.per_euro <= 0:
            return None
        return amount * target.per_euro / source.per_euro, source, target


def read_history(
    conn: Connection, currencies: Iterable[str], since: date, until: date
) -> RateHistory:
    wanted = sorted({c for c in currencies if c != "EUR"})
    quotes: dict[str, list[RateQuote]] = {c: [] for c in wanted}
    if wanted:
        rows = conn.execute(
            select(FxRate.currency, FxRate.rate_date, FxRate.per_euro, FxRate.source)
            .where(
                FxRate.currency.in_(wanted),
                FxRate.rate_date >= since - REACH_BACK,
                FxRate.rate_date <= until,
            )
            .order_by(FxRate.currency, FxRate.rate_date)
        )
        for row in rows:
            quotes[row.currency].append(
                RateQuote(row.currency, float(row.per_euro), row.rate_date, row.source)
            )
    return RateHistory(quotes)
