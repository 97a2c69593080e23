"""The trade service's public module: what people import, and the REPL helpers.

The service itself lives in ``services.trading`` (order checks, pre-trade
validation, the audit store, views and the orchestrating service); this module
keeps the names people call and adds the defaults a REPL needs. Nothing in the
product imports it.
"""

from __future__ import annotations

from typing import Any

from providers.snaptrade.errors import (
    MAPPED_TRADING_FAILURES,
    TRADING_1020_MESSAGE,
)
from providers.snaptrade.errors import (
    map_snaptrade_trading_error as _map_snaptrade_trading_error,
)
from services.composition import Services, configured_services
from services.trading.orders import OrderRequest, check_order_request, order_hash
from services.trading.service import TradeExecutionService
from services.trading.views import confirmation_message

__all__ = [
    "MAPPED_TRADING_FAILURES",
    "TRADING_1020_MESSAGE",
    "OrderRequest",
    "TradeExecutionService",
    "_map_snaptrade_trading_error",
    "check_order_request",
    "confirmation_message",
    "order_hash",
    "preview_snaptrade_order",
    "search_snaptrade_symbol",
]


def search_snaptrade_symbol(
    user_email: str, account_id: str, ticker: str, *, services: Services | None = None
) -> list[dict[str, Any]]:
    """REPL: ``search_snaptrade_symbol("me@example.com", account_id, "AAPL")``."""
    hub = services or configured_services()
    return hub.trading_for(user_email).search_symbol(account_id, ticker)


def preview_snaptrade_order(
    user_email: str,
    account_id: str,
    ticker: str,
    side: str,
    quantity: float,
    order_type: str = "Market",
    limit_price: float | None = None,
    *,
    services: Services | None = None,
) -> dict[str, Any]:
    """REPL: ``preview_snaptrade_order(email, account_id, "AAPL", "BUY", 1, "Market")``."""
    hub = services or configured_services()
    return hub.trading_for(user_email).preview_order(
        account_id, ticker, side, quantity, order_type, limit_price, requested_via="repl"
    )
