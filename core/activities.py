"""The one activity schema both providers' account history is normalized into.

``amount`` is signed from the account's point of view, in ``currency``: positive when cash
comes in (a sale, a dividend, interest, a deposit), negative when it goes out (a buy, a
fee, a withdrawal). Plaid sends the opposite sign; its loader turns it round.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

ACTIVITY_TYPES = (
    "buy",
    "sell",
    "dividend",
    "interest",
    "fee",
    "tax",
    "deposit",
    "withdrawal",
    "transfer",
    "split",
    "other",
)
# What income reports sum: money the holdings earned, and what the accounts cost.
INCOME_TYPES = ("dividend", "interest")
COST_TYPES = ("fee", "tax")


@dataclass(frozen=True)
class NormalizedActivity:
    user_email: str
    provider: str
    institution: str
    account_id: str
    account_name: str | None
    # The provider's id of the activity (a correction may come back under another one).
    activity_id: str
    trade_date: date
    type: str
    ticker: str | None
    security_id: str | None
    description: str | None
    quantity: float | None
    price: float | None
    amount: float | None
    # A commission or fee charged with a trade (the fee activities are their own rows).
    fee: float | None
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ACTIVITY_FIELDS = tuple(f.name for f in fields(NormalizedActivity))
