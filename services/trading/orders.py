"""An order as asked for: its shape checked before any provider is called, and its hash."""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import InvalidInput
from core.numbers import finite_number
from core.untrusted import neutral_text

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("Market", "Limit")
TIMES_IN_FORCE = ("Day", "GTC", "FOK", "IOC")
# A SnapTrade trade id from get_order_impact can be placed for 5 minutes.
SNAPTRADE_TRADE_LIFETIME = timedelta(minutes=5)
TRADING_DISABLED_MESSAGE = (
    "Trading is disabled in Brokerage Hub (TRADING_ENABLED=false, the default), so nothing "
    "was placed. To allow placing orders, set TRADING_ENABLED=true in the environment or in "
    "the .env file and restart Brokerage Hub (the MCP server or web app). Previews work "
    "either way."
)
_TICKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/: ]{0,19}")
PREVIEW_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_PREVIEW_ID_ALPHABET = string.ascii_letters + string.digits


def new_preview_id() -> str:
    """32 letters and digits (190 bits): unguessable, and never starting with "-", which a
    command line would read as an option (``confirm-trade <preview_id>``)."""
    return "".join(secrets.choice(_PREVIEW_ID_ALPHABET) for _ in range(32))


_ACCOUNT_ID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# The smallest unit brokerages trade (fractional shares to four decimals), and bounds
# past which a number is a typo or an attack, never an order: 1e-300 shares or a
# 1e-12 limit would slip past a value cap.
MIN_UNITS = 0.0001
MIN_PRICE = 0.0001
MAX_PRICE = 10_000_000.0
DEFAULT_MAX_QUANTITY = 100_000.0


@dataclass(frozen=True)
class OrderRequest:
    """What the caller asked for, already checked for shape (not against the broker)."""

    account_id: str
    ticker: str
    side: str
    quantity: float
    order_type: str
    limit_price: float | None
    time_in_force: str


def aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value is not None else None


def parse_time(value: Any) -> datetime | None:
    """An ISO time from a provider's answer, aware (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return aware(parsed)


number = finite_number


def quoted(value: Any, limit: int = 60) -> str:
    """Provider text (a name, a symbol) as a message quotes it: one short line of plain text.

    A message is read by a model and shown on pages: a brokerage's account name could
    otherwise carry markup or a line that reads like an instruction."""
    return neutral_text(value, limit) or ""


def money_or_unknown(value: float | None) -> float | str:
    # SnapTrade not telling is not the same as zero: never show it as 0.
    return "unknown" if value is None else value


def order_hash(
    *,
    user_email: str,
    account_id: str,
    universal_symbol_id: str | None,
    symbol: str,
    side: str,
    quantity: float,
    order_type: str,
    limit_price: float | None,
    time_in_force: str,
    provider_trade_id: str | None,
) -> str:
    """The hash that binds a preview id to exactly one order in one account."""
    canonical = json.dumps(
        {
            "user": user_email,
            "account": account_id,
            "universal_symbol_id": universal_symbol_id,
            "symbol": symbol,
            "side": side,
            "quantity": repr(float(quantity)),
            "order_type": order_type,
            "limit_price": None if limit_price is None else repr(float(limit_price)),
            "time_in_force": time_in_force,
            "trade_id": provider_trade_id,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def row_hash(user_email: str, row: dict[str, Any]) -> str:
    return order_hash(
        user_email=user_email,
        account_id=row["account_id"],
        universal_symbol_id=row["universal_symbol_id"],
        symbol=row["symbol"],
        side=row["side"],
        quantity=row["quantity"],
        order_type=row["order_type"],
        limit_price=row["limit_price"],
        time_in_force=row["time_in_force"],
        provider_trade_id=row["provider_trade_id"],
    )


def check_order_request(
    account_id: Any,
    ticker: Any,
    side: Any,
    quantity: Any,
    order_type: Any = "Market",
    limit_price: Any = None,
    time_in_force: Any = "Day",
    *,
    max_quantity: float = DEFAULT_MAX_QUANTITY,
) -> OrderRequest:
    """Reject a malformed order before any provider is called."""
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id.strip()):
        raise InvalidInput(
            f"account_id {account_id!r} is not a SnapTrade account id (a UUID such "
            "as the ones get_positions lists)",
            field="account_id",
        )
    if not isinstance(ticker, str) or not _TICKER.fullmatch(ticker.strip()):
        raise InvalidInput(
            f"ticker {ticker!r} is not a symbol such as AAPL or BRK.B", field="ticker"
        )
    side_text = side.strip().upper() if isinstance(side, str) else side
    if side_text not in SIDES:
        raise InvalidInput(f"unknown side {side!r}: allowed values are BUY or SELL", field="side")
    types = {t.lower(): t for t in ORDER_TYPES}
    order_type_text = types.get(order_type.strip().lower()) if isinstance(order_type, str) else None
    if order_type_text is None:
        raise InvalidInput(
            f"unknown order type {order_type!r}: allowed values are Market or Limit",
            field="order_type",
        )
    tifs = {t.lower(): t for t in TIMES_IN_FORCE}
    tif = tifs.get(time_in_force.strip().lower()) if isinstance(time_in_force, str) else None
    if tif is None:
        raise InvalidInput(
            f"unknown time in force {time_in_force!r}: allowed values are "
            + ", ".join(TIMES_IN_FORCE),
            field="time_in_force",
        )
    units = bounded_number(quantity, "quantity", MIN_UNITS, max_quantity, "MAX_ORDER_QUANTITY")
    price: float | None = None
    if order_type_text == "Limit":
        if limit_price is None:
            raise InvalidInput("a Limit order needs a positive limit_price", field="limit_price")
        price = bounded_number(limit_price, "limit_price", MIN_PRICE, MAX_PRICE)
    elif limit_price is not None:
        raise InvalidInput(
            "limit_price is only for Limit orders; leave it out for a Market order",
            field="limit_price",
        )
    return OrderRequest(
        account_id=account_id.strip(),
        ticker=ticker.strip().upper(),
        side=str(side_text),
        quantity=units,
        order_type=order_type_text,
        limit_price=price,
        time_in_force=tif,
    )


def bounded_number(
    value: Any, name: str, smallest: float, largest: float, largest_setting: str = ""
) -> float:
    """A real number (never a boolean: JSON true is not 1 share) within the bounds."""
    number = positive_finite(value, name)
    if not smallest <= number <= largest:
        limit = f"{largest:g} ({largest_setting})" if largest_setting else f"{largest:g}"
        raise InvalidInput(
            f"{name} {number:g} is out of bounds: from {smallest:g} to {limit}", field=name
        )
    return number


def positive_finite(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a positive number, not {value!r}", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a positive number, not {value!r}", field=name) from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(
            f"{name} must be a positive, finite number, not {value!r}", field=name
        ) from None
    return number
