"""Trades: recent previews and orders from the audit table (read-only: orders go through MCP)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from routes.common import services

bp = Blueprint("trades", __name__)

RECENT_TRADES = 50


@bp.get("/trades")
def trades_page() -> Any:
    svc = services()
    return render_template(
        "trades.html",
        trades=svc.trading.list_trades(RECENT_TRADES),
        trading_enabled=svc.settings.trading_enabled,
    )
