"""What the connections, Plaid and SnapTrade pages share: one template, one overview."""

from __future__ import annotations

from typing import Any

from flask import render_template

from routes.common import services
from services.connection_overview import connections_overview

PROVIDER_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


def render_connections(providers: tuple[str, ...], *, title: str) -> Any:
    hub = services()
    return render_template(
        "connections.html",
        title=title,
        providers=providers,
        provider_names=PROVIDER_NAMES,
        overview=connections_overview(hub.health, hub.connections, hub.access, providers=providers),
        refresh_hours={p: hub.positions.cache_hours_for_provider(p) for p in providers},
    )
