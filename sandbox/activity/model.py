"""One activity of a demo account, provider-neutral, and the window the history spans.

``amount`` is signed from the account's point of view, in ``currency``: positive when cash
comes in (a sale, a dividend, interest, a deposit), negative when it goes out (a buy, a fee,
a withdrawal). A trade's ``amount`` is the cash that moved: ``quantity * price`` rounded to
the cent, less its ``fee`` for a sale, plus it for a buy. Each provider renders it in its
own convention (Plaid turns the sign round).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

ActivityKind = Literal["buy", "sell", "dividend", "interest", "fee", "deposit", "withdrawal"]
KINDS: tuple[ActivityKind, ...] = (
    "buy",
    "sell",
    "dividend",
    "interest",
    "fee",
    "deposit",
    "withdrawal",
)

# Plaid serves up to 24 months of investment transactions; SnapTrade runs a day behind
# (today's transactions are not fetched), so the history ends yesterday.
HISTORY_DAYS = 730


@dataclass(frozen=True)
class Activity:
    id: str
    account_key: str
    trade_date: date
    kind: ActivityKind
    ticker: str | None  # None for cash-only activities (interest, fees, deposits, ...)
    quantity: float | None  # positive units for a buy or sell, else None
    price: float | None  # per unit for a buy or sell, else None
    amount: float  # signed: positive = cash into the account
    fee: float  # commission on a trade (>= 0), else 0
    currency: str
    description: str

    def to_json(self) -> dict[str, Any]:
        """The activity as JSON-serialisable values (the date as YYYY-MM-DD)."""
        return asdict(self) | {"trade_date": self.trade_date.isoformat()}


def history_window(today: date) -> tuple[date, date]:
    """The first and last day (both inclusive) of the history served on ``today``."""
    return today - timedelta(days=HISTORY_DAYS), today - timedelta(days=1)


def today_of(now: float) -> date:
    """The emulator's "today" (UTC) at its clock's ``now`` (unix seconds)."""
    return datetime.fromtimestamp(now, UTC).date()
