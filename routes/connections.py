"""The connections page: every Plaid Item and SnapTrade connection, with its state and repairs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from routes.linking_pages import render_connections

bp = Blueprint("connections", __name__)


@bp.get("/connections")
def connections_page() -> Any:
    return render_connections(("plaid", "snaptrade"), title="Connections")
