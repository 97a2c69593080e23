"""What an order is worth, counted at its worst case: the value every limit is checked against.

A limit price is a ceiling for a BUY but only a floor for a SELL: a SELL limit of
1.00 on shares worth 60 still sells shares worth 60 each (and may fill far below
their worth). So:

* a SELL is valued at the higher of its limit and the best known market price;
* a BUY Limit at quantity x limit;
* a BUY Market at quantity x the highest known price plus a buffer
  (``MARKET_ORDER_BUFFER_PERCENT``), since the fill may be above the last price.

A SELL limit far below the market (``FAR_LIMIT_PERCENT``) is refused unless the
caller asks for it (``allow_far_limit``), and then the person confirming is told the
discount in words: the flag lets the order reach the person, never past them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInput
from services.trading.orders import OrderRequest


@dataclass(frozen=True)
class ValueRules:
    max_order_value: float
    market_buffer_percent: float
    far_limit_percent: float


@dataclass(frozen=True)
class OrderValue:
    value: float  # the worst case, in the order's currency
    price: float  # the price the value was counted at
    market_price: float | None  # the highest market price known
    market_source: str | None
    basis: str  # how the value was reached, in words
    limit_discount_percent: float | None  # a SELL limit this far below the market


def best_market_price(known: dict[str, float | None]) -> tuple[float | None, str | None]:
    """The highest known price and where it came from (None when nothing is known)."""
    priced = [(price, source) for source, price in known.items() if price is not None and price > 0]
    if not priced:
        return None, None
    price, source = max(priced)
    return price, source


def worst_case_value(
    request: OrderRequest,
    known_prices: dict[str, float | None],
    currency: str,
    rules: ValueRules,
    *,
    allow_far_limit: bool = False,
) -> OrderValue:
    """The order's value at its worst case, checked against MAX_ORDER_VALUE and the far limit."""
    market, source = best_market_price(known_prices)
    quantity, limit = request.quantity, request.limit_price
    discount: float | None = None
    if request.side == "SELL":
        if market is None and limit is None:
            raise _no_price(request)
        if limit is not None and (market is None or limit >= market):
            price = limit
            basis = f"{quantity:g} x the limit {limit:g} {currency}"
            if market is None:
                basis += " (no market price is known)"
        else:
            assert market is not None
            price = market
            basis = f"{quantity:g} x the market price {market:g} {currency} ({source})"
            if limit is not None:
                discount = round((market - limit) / market * 100, 1)
                basis += f"; the limit {limit:g} is only a floor for a SELL"
    elif limit is not None:
        price, basis = limit, f"{quantity:g} x the limit {limit:g} {currency}"
    else:
        if market is None:
            raise _no_price(request)
        price = market * (1 + rules.market_buffer_percent / 100)
        basis = (
            f"{quantity:g} x the market price {market:g} {currency} ({source}) plus "
            f"{rules.market_buffer_percent:g}% for a Market BUY"
        )
    value = round(quantity * price, 2)
    if value > rules.max_order_value:
        raise InvalidInput(
            f"the order is worth {value:,.2f} {currency} at its worst case ({basis}), above "
            f"MAX_ORDER_VALUE ({rules.max_order_value:,.2f}): use a smaller quantity, or "
            "raise MAX_ORDER_VALUE",
            field="quantity",
        )
    if discount is not None and discount >= rules.far_limit_percent and not allow_far_limit:
        raise InvalidInput(
            f"the SELL limit {limit:g} {currency} is {discount:g}% below the market price "
            f"{market:g} ({source}), at or past FAR_LIMIT_PERCENT ({rules.far_limit_percent:g}%): "
            "it could sell for far less than the shares are worth. If that is intended, "
            "preview it again with allow_far_limit=true; the person confirming is told the "
            "discount.",
            field="limit_price",
        )
    return OrderValue(value, price, market, source, basis, discount)


def _no_price(request: OrderRequest) -> InvalidInput:
    return InvalidInput(
        f"no price is known for {request.ticker}, so the value of a Market order cannot be "
        "checked against MAX_ORDER_VALUE: place a Limit order (with limit_price) instead",
        field="order_type",
    )
