"""How previews and orders are shown: to the assistant, on the pages, and to the person who
confirms them."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from core.normalized import KNOWN_INSTITUTIONS
from services.trading.orders import aware, iso, money_or_unknown, number, quoted
from services.trading.policy import TradingPolicy
from services.trading.validation import currency_code

# What the confirmation may quote of the provider's words: nothing free-form. A symbol
# of this shape and a known brokerage name, or a neutral stand-in.
_PLAIN_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-/]{0,19}")
_PLAIN_CURRENCY = re.compile(r"[A-Z]{3}")


def parse_json(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def effective_status(row: dict[str, Any], now: datetime) -> str:
    expires_at = aware(row.get("expires_at"))
    if row["status"] in ("previewed", "confirmed") and (expires_at is None or now >= expires_at):
        return "expired"
    return str(row["status"])


def order_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "account_name": row.get("account_name"),
        "brokerage": row.get("brokerage"),
        "symbol": row["symbol"],
        "description": row.get("description"),
        "side": row["side"],
        "quantity": row["quantity"],
        "order_type": row["order_type"],
        "limit_price": row.get("limit_price"),
        "time_in_force": row["time_in_force"],
        "currency": row.get("currency"),
    }


def impact_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "estimated_price": row.get("estimated_price"),
        "price_source": row.get("price_source"),
        # The worst case every limit was checked against, and how it was reached.
        "estimated_value": row.get("estimated_value"),
        "value_basis": row.get("value_basis"),
        "market_price": row.get("market_price"),
        "limit_below_market_percent": row.get("limit_discount_percent"),
        "commission": money_or_unknown(row.get("commission")),
        "fees": money_or_unknown(row.get("fees")),
        "remaining_cash": row.get("remaining_cash"),
    }


def confirmation_message(row: dict[str, Any]) -> str:
    """The exact order, in words, for the person to confirm before it is placed.

    Built only from fields Brokerage Hub validated (numbers, the side, a symbol of a
    plain shape, the account id, a known brokerage) and our own words on how the worst case
    was counted (``value_basis``: numbers and where the price came from): a provider's free
    text (a security's description, an account's name) could carry lines that look like
    instructions or like another order, so none of it is quoted here.
    """
    currency = row.get("currency") or ""
    currency = currency if _PLAIN_CURRENCY.fullmatch(currency) else ""
    symbol = str(row["symbol"])
    symbol = symbol if _PLAIN_SYMBOL.fullmatch(symbol) else "(the symbol previewed)"
    brokerage = str(row.get("brokerage") or "")
    brokerage = brokerage if brokerage in KNOWN_INSTITUTIONS.values() else "the brokerage"
    if row["order_type"] == "Limit":
        price = f"limit {price_text(row['limit_price'])} {currency}"
    else:
        market = row.get("market_price")
        counted = row.get("estimated_price")
        price = "market" if market is None else f"market, last {price_text(market)} {currency}"
        if counted is not None and (market is None or counted > market):
            price += f" (counted at up to {price_text(counted)} {currency})"
    value = row.get("estimated_value")
    value_text = f"{value:,.2f} {currency}" if value is not None else "unknown"
    commission = row.get("commission")
    commission_text = f"{commission:,.2f} {currency}" if commission is not None else "unknown"
    lines = [
        f"Place this order at {brokerage}?",
        f"Account: {row['account_id']}",
        f"Side: {row['side']}",
        f"Quantity: {row['quantity']:g}",
        f"Symbol: {symbol}",
        f"Order type: {row['order_type']} ({row['time_in_force']})",
        f"Price: {price}",
        f"Value at worst case: {value_text}",
    ]
    basis = row.get("value_basis")
    if basis:
        # Where the worst-case price came from: the limit, or a market price and its source.
        lines.append(f"Counted as: {quoted(basis, 300)}")
    lines.append(f"Commission: {commission_text}")
    discount = row.get("limit_discount_percent")
    market = row.get("market_price")
    if discount is not None and market is not None:
        lines.append(
            f"WARNING: the limit is {discount:g}% below the market price ({price_text(market)} "
            f"{currency}): these shares could be sold for far less than they are worth."
        )
    return "\n".join(lines)


def price_text(price: float) -> str:
    """A price as a person reads it: cents, or more digits for a price under one unit."""
    return f"{price:,.2f}" if price >= 1 else f"{price:.6g}"


def symbol_view(symbol: dict[str, Any]) -> dict[str, Any]:
    exchange = symbol.get("exchange") if isinstance(symbol.get("exchange"), dict) else {}
    return {
        "symbol": symbol.get("symbol"),
        "description": symbol.get("description"),
        "universal_symbol_id": symbol.get("id"),
        "currency": currency_code(symbol.get("currency")),
        "exchange": exchange.get("code") if exchange else None,
        "type": (symbol.get("type") or {}).get("description")
        if isinstance(symbol.get("type"), dict)
        else None,
    }


def preview_view(row: dict[str, Any], now: datetime, policy: TradingPolicy) -> dict[str, Any]:
    expires_at = aware(row["expires_at"])
    seconds_left = max(0, int((expires_at - now).total_seconds())) if expires_at is not None else 0
    status = effective_status(row, now)
    view = {
        "preview_id": row["preview_id"],
        "status": status,
        "expires_at": iso(expires_at),
        "expires_in_seconds": seconds_left,
        "order": order_fields(row),
        "impact": impact_fields(row),
        "confirmed_via": row.get("confirmed_via"),
        **policy.describe(),
    }
    if not policy.trading_enabled:
        view["next_step"] = (
            "Trading is disabled (TRADING_ENABLED=false): this preview cannot be placed "
            "until TRADING_ENABLED=true is set and Brokerage Hub restarted."
        )
    elif status in ("previewed", "confirmed"):
        view["next_step"] = (
            "To place it, call execute_trade with this preview_id before it expires; the "
            "person is asked to confirm the exact order first."
        )
    return view


def trade_list(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The audit as list_trades shows it, newest first."""
    return [
        {
            "preview_id": r["preview_id"],
            "created_at": iso(r["created_at"]),
            "requested_via": r["requested_via"],
            "status": effective_status(r, now),
            "confirmed_via": r.get("confirmed_via"),
            "order": order_fields(r),
            "impact": impact_fields(r),
            "expires_at": iso(r["expires_at"]),
            "error": r["error"],
            "execution": (
                {
                    "status": r["order_status"],
                    "brokerage_order_id": r["brokerage_order_id"],
                    "provider_status": r["provider_status"],
                    "completed_at": iso(r["completed_at"]),
                    "error": r["order_error"],
                }
                if r["order_status"]
                else None
            ),
        }
        for r in rows
    ]


def order_view(
    row: dict[str, Any], order: dict[str, Any] | None, *, already: bool
) -> dict[str, Any]:
    answer = parse_json(order.get("provider_answer")) if order else {}
    return {
        "preview_id": row["preview_id"],
        "status": "placed" if order and order["status"] == "placed" else row["status"],
        "already_executed": already,
        "brokerage_order_id": order.get("brokerage_order_id") if order else None,
        "provider_status": order.get("provider_status") if order else None,
        "placed_at": iso(order.get("completed_at")) if order else None,
        "filled_quantity": number(answer.get("filled_quantity")),
        "execution_price": number(answer.get("execution_price")),
        "order": order_fields(row),
        "impact": impact_fields(row),
    }
