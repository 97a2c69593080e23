"""Plaid connections page."""

from __future__ import annotations

from flask import Blueprint, render_template

from routes import services
from services.position_service import PositionService

bp = Blueprint("plaid", __name__, url_prefix="/plaid")


@bp.get("/")
def connections():  # type: ignore[no-untyped-def]
    svc = services()
    return render_template(
        "provider_connections.html",
        provider="plaid",
        title="Plaid",
        connections=svc.connections.list(svc.user_email, "plaid"),
        refresh_hours=PositionService.cache_hours_for_provider("plaid"),
    )
