"""The connections page: every Plaid Item and SnapTrade connection, with its state and repairs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from routes.linking_pages import render_connections

bp = Blueprint("connections", __name__)


@bp.get("/connections")
def connections_page() -> Any:
    return render_connections(("plaid", "snaptrade"), title="Connections")


@bp.post("/connections/probe-trading")
def probe_trading() -> Any:
    """The trading probe button: one read-only symbol search per SnapTrade trade connection
    (a disabled SnapTrade is not asked), shown on the connections page it answers with."""
    return render_connections(("plaid", "snaptrade"), title="Connections", probe_trading=True)
