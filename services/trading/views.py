"""How previews and orders are shown: to the assistant, on the pages, and to the person who
confirms them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from services.trading.orders import aware, iso, money_or_unknown, number
from services.trading.validation import currency_code


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
    if row["status"] == "previewed" and (expires_at is None or now >= expires_at):
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
        "estimated_value": row.get("estimated_value"),
        "commission": money_or_unknown(row.get("commission")),
        "fees": money_or_unknown(row.get("fees")),
        "remaining_cash": row.get("remaining_cash"),
    }


def confirmation_message(row: dict[str, Any]) -> str:
    """The exact order, in words, for the person to confirm before it is placed."""
    currency = row.get("currency") or ""
    price = (
        f"limit {row['limit_price']:g} {currency}"
        if row["order_type"] == "Limit"
        else f"market (about {row['estimated_price']:g} {currency})"
    )
    value = row.get("estimated_value")
    value_text = f"{value:,.2f} {currency}" if value is not None else "unknown"
    commission = row.get("commission")
    commission_text = f"{commission:,.2f} {currency}" if commission is not None else "unknown"
    account = row.get("account_name") or ""
    return (
        f"Place this order at {row['brokerage']}?\n"
        f"Account: {account} ({row['account_id']})\n"
        f"Side: {row['side']}\n"
        f"Quantity: {row['quantity']:g}\n"
        f"Symbol: {row['symbol']}"
        + (f" ({row['description']})" if row.get("description") else "")
        + "\n"
        f"Order type: {row['order_type']} ({row['time_in_force']})\n"
        f"Price: {price}\n"
        f"Estimated value: {value_text}\n"
        f"Commission: {commission_text}"
    )


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


def preview_view(row: dict[str, Any], now: datetime, *, trading_enabled: bool) -> dict[str, Any]:
    expires_at = aware(row["expires_at"])
    seconds_left = max(0, int((expires_at - now).total_seconds())) if expires_at is not None else 0
    view = {
        "preview_id": row["preview_id"],
        "status": effective_status(row, now),
        "expires_at": iso(expires_at),
        "expires_in_seconds": seconds_left,
        "order": order_fields(row),
        "impact": impact_fields(row),
        "trading_enabled": trading_enabled,
    }
    view["next_step"] = (
        "To place it, call execute_trade with this preview_id before it expires."
        if trading_enabled
        else "Trading is disabled (TRADING_ENABLED=false): this preview cannot be placed "
        "until TRADING_ENABLED=true is set and Brokerage Hub restarted."
    )
    return view


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
