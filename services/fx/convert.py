"""Amounts in the base currency, with every rate used said: pair, value, date and source.

A rate between two currencies comes through the euro (the ECB publishes euro reference
rates): USD per EUR and GBP per EUR give USD per GBP, dated the older of the two. An
amount in a currency with no rate is never converted at 1:1 and never dropped: it is
kept, in its own currency, under ``unconverted``, and a warning says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from services.fx.quotes import RateQuote, RateSnapshot

# A rate this much older than the positions it values is reported as old.
OLD_RATE = timedelta(days=7)


class Converter:
    """Converts to ``base`` with the rates of one snapshot; remembers nothing per call."""

    def __init__(self, base: str, snapshot: RateSnapshot) -> None:
        self.base = base
        self.snapshot = snapshot
        self._rates: dict[str, tuple[float, date, str] | None] = {}

    def rate(self, currency: str) -> tuple[float, date, str] | None:
        """Units of the base currency per unit of ``currency``, its date and its source."""
        if currency not in self._rates:
            self._rates[currency] = self._cross(currency)
        return self._rates[currency]

    def _cross(self, currency: str) -> tuple[float, date, str] | None:
        if currency == self.base:
            return 1.0, self.snapshot.on, "same currency"
        source = self.snapshot.quote(currency)
        target = self.snapshot.quote(self.base)
        if source is None or target is None or source.per_euro <= 0:
            return None
        return target.per_euro / source.per_euro, _older(source, target), _source(source, target)

    def to_base(self, amount: float | None, currency: str) -> float | None:
        """``amount`` in the base currency; None when there is no rate (or no amount)."""
        if amount is None:
            return None
        rate = self.rate(currency)
        return None if rate is None else amount * rate[0]

    def total(self, native: dict[str, float]) -> tuple[float, dict[str, float]]:
        """A per-currency total in the base currency, and what could not be converted."""
        converted, unconverted = 0.0, {}
        for currency, amount in native.items():
            value = self.to_base(amount, currency)
            if value is None:
                unconverted[currency] = amount
            else:
                converted += value
        return round(converted, 2), unconverted

    def report(self, currencies: Iterable[str], unconverted: dict[str, float]) -> dict[str, Any]:
        """The ``fx`` block of an answer: the base, the date valued on, every rate used,
        what stayed unconverted, and warnings in words."""
        rates, warnings = [], []
        for currency in sorted(set(currencies) - {self.base}):
            rate = self.rate(currency)
            if rate is None:
                continue
            value, rate_date, source = rate
            rates.append(
                {
                    "pair": f"{currency}/{self.base}",
                    "rate": round(value, 8),
                    "date": rate_date.isoformat(),
                    "source": source,
                }
            )
            if self.snapshot.on - rate_date > OLD_RATE:
                warnings.append(
                    f"the {currency}/{self.base} rate is from {rate_date.isoformat()}, "
                    f"{(self.snapshot.on - rate_date).days} days before the positions "
                    "(set FX_RATES_URL to refresh the rates)"
                )
        if unconverted:
            listed = ", ".join(f"{c} {a:,.2f}" for c, a in sorted(unconverted.items()))
            warnings.append(
                f"no exchange rate to {self.base} for {', '.join(sorted(unconverted))}: "
                f"left out of every {self.base} total and shown in its own currency ({listed})"
            )
        return {
            "base_currency": self.base,
            "valued_on": self.snapshot.on.isoformat(),
            "rates": rates,
            "unconverted": dict(sorted(unconverted.items())),
            "warnings": warnings,
        }


def _older(a: RateQuote, b: RateQuote) -> date:
    return min(a.rate_date, b.rate_date)


def _source(a: RateQuote, b: RateQuote) -> str:
    sources = [q.source for q in (a, b) if q.source != "definition"]
    return sources[0] if len(set(sources)) <= 1 and sources else " and ".join(sorted(set(sources)))
