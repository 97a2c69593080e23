"""The buys (and sometimes a sale) that built each seeded holding.

The lots add up exactly to the holding's ``quantity``, and under the average-cost method
(a buy adds ``quantity * price`` to the cost, a sale removes the sold units at the average
cost of the moment; commissions are kept apart) the units left cost the holding's
``cost_basis`` to a twentieth of a cent. Every lot but the last is priced to the cent
around the average cost; the last one, priced to 1/10000 as brokers report fills, takes
the remainder. All of it follows from the holding alone, so every process agrees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from sandbox.data import Holding

CENT = Decimal("0.01")
LAST_PRICE_STEP = Decimal("0.0001")
# How far the lots' remaining cost may be from the seeded cost basis.
COST_TOLERANCE = Fraction(1, 2000)
# Holdings that were partly sold between two buys (account key, ticker).
PARTLY_SOLD = frozenset(
    {("merrill-cma", "AAPL"), ("schwab-individual", "SCHB"), ("ibkr-individual", "TSLA")}
)
# The last trade of any holding happens this many days after the history starts.
LAST_TRADE_OFFSET = 640


@dataclass(frozen=True)
class Trade:
    offset: int  # days after the first day of the history
    side: Literal["buy", "sell"]
    quantity: Decimal  # > 0
    price: Decimal


def digest(*parts: str) -> int:
    """A number that depends only on ``parts`` (the same in every process)."""
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "big")


def jitter(*parts: str, spread: int = 30) -> Decimal:
    """A fixed fraction in [-spread/1000, spread/1000] derived from ``parts``."""
    return Decimal(digest(*parts) % (2 * spread + 1) - spread) / 1000


def plan(account_key: str, index: int, holding: Holding) -> list[Trade]:
    """The trades of ``holding`` (the ``index``-th of its account), oldest first."""
    total = Decimal(str(holding.quantity))
    places = max(0, -int(total.normalize().as_tuple().exponent))
    step = Decimal(1).scaleb(-places)

    def part(share: str) -> Decimal:
        return (total * Decimal(share)).quantize(step)

    cash_like = holding.kind == "money market"
    sold = (account_key, holding.ticker) in PARTLY_SOLD
    if sold:
        sides: list[Literal["buy", "sell"]] = ["buy", "buy", "sell", "buy"]
        quantities = [part("0.5"), part("0.3"), part("0.25")]
        factors = ["0.85", "0.97", "1.18"]
    elif cash_like or digest(account_key, holding.ticker, "lots") % 2 == 0:
        sides, quantities, factors = ["buy", "buy"], [part("0.6")], ["0.91"]
    else:
        sides, quantities, factors = ["buy"] * 3, [part("0.45"), part("0.3")], ["0.86", "1.07"]
    bought = sum((q for q, s in zip(quantities, sides, strict=False) if s == "buy"), Decimal(0))
    sold_units = sum(
        (q for q, s in zip(quantities, sides, strict=False) if s == "sell"), Decimal(0)
    )
    quantities.append(total - bought + sold_units)

    cost = _seeded_cost(holding)
    average = Decimal(cost.numerator) / Decimal(cost.denominator) / total
    prices = [
        Decimal(1) if cash_like else (average * (Decimal(f) + jitter(holding.ticker, str(i))))
        for i, f in enumerate(factors)
    ]
    first = 6 + 9 * index + digest(account_key, holding.ticker, "first") % 5
    last = LAST_TRADE_OFFSET - 11 * index - digest(account_key, holding.ticker, "last") % 7
    count = len(sides)
    trades = [
        Trade(
            offset=first + round(i * (last - first) / (count - 1)),
            side=sides[i],
            quantity=quantities[i],
            price=prices[i].quantize(CENT) if i < count - 1 else Decimal(0),
        )
        for i in range(count)
    ]
    return _price_last_lot(trades, cost, step)


def _seeded_cost(holding: Holding) -> Fraction:
    if holding.cost_basis is not None:
        return Fraction(Decimal(str(holding.cost_basis)))
    # The demo data knows every cost basis; a holding without one is bought at 90% of its price.
    return Fraction(Decimal(str(holding.quantity)) * Decimal(str(holding.price))) * Fraction(9, 10)


def remaining_cost(trades: list[Trade]) -> Fraction:
    """The cost of the units the trades leave, under the average-cost method (exact)."""
    cost, units = Fraction(0), Fraction(0)
    for trade in trades:
        quantity = Fraction(trade.quantity)
        if trade.side == "buy":
            cost += quantity * Fraction(trade.price)
            units += quantity
        else:
            cost -= cost * quantity / units
            units -= quantity
    return cost


def _price_last_lot(trades: list[Trade], cost: Fraction, step: Decimal) -> list[Trade]:
    """Price the last buy so that the lots cost ``cost``.

    The last price is rounded to 1/10000, which can miss the remainder by up to half a
    hundredth of a cent per unit: the buy before it is moved a cent at a time (and, when
    that is not enough, a few units move between the two buys) until the miss is below
    ``COST_TOLERANCE``.
    """
    *earlier, last = trades
    previous = max(i for i, t in enumerate(earlier) if t.side == "buy")
    for moved_units in (0, 1, -1, 2, -2, 3, -3):
        units = moved_units * step
        for attempt in range(400):
            cents = (attempt + 1) // 2 * (1 if attempt % 2 else -1)
            moved = list(earlier)
            moved[previous] = replace(
                earlier[previous],
                quantity=earlier[previous].quantity + units,
                price=earlier[previous].price + cents * CENT,
            )
            quantity = last.quantity - units
            remainder = cost - remaining_cost(moved)
            exact = remainder / Fraction(quantity)
            price = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
                LAST_PRICE_STEP
            )
            miss = abs(Fraction(quantity) * Fraction(price) - remainder)
            if price > 0 and miss <= COST_TOLERANCE:
                return [*moved, replace(last, quantity=quantity, price=price)]
    raise ValueError(f"no lot prices reach the cost basis {float(cost)}")
