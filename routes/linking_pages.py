"""What the connections, Plaid and SnapTrade pages share: one template, one overview."""

from __future__ import annotations

from typing import Any

from flask import flash, render_template

from routes.common import services
from services.connections.overview import connections_overview

PROVIDER_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


def render_connections(
    providers: tuple[str, ...], *, title: str, probe_trading: bool = False
) -> Any:
    """The page; with ``probe_trading`` after a trading probe, saying what it found."""
    hub = services()
    overview = connections_overview(
        hub.health,
        hub.connections,
        hub.access,
        providers=providers,
        probe_trading=probe_trading,
    )
    if overview.probe_summary:
        flash(overview.probe_summary, "info" if overview.probe_ok else "error")
    return render_template(
        "connections.html",
        title=title,
        providers=providers,
        provider_names=PROVIDER_NAMES,
        overview=overview,
        refresh_hours={p: hub.positions.cache_hours_for_provider(p) for p in providers},
    )
