"""What a rate is, as the views use it: euro reference rates, as the ECB publishes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class RateQuote:
    """One currency's ECB reference rate: how many units of it one euro buys on ``rate_date``."""

    currency: str
    per_euro: float
    rate_date: date
    source: str


@dataclass(frozen=True)
class RateSnapshot:
    """The newest rate on or before ``on`` of each currency that has one (the euro is 1)."""

    on: date
    quotes: dict[str, RateQuote]
    # Counts up whenever the stored rates change: views built with other rates are stale.
    version: int

    def quote(self, currency: str) -> RateQuote | None:
        if currency == "EUR":
            return RateQuote("EUR", 1.0, self.on, "definition")
        return self.quotes.get(currency)
