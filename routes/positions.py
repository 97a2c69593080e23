"""Positions: the page and ``GET /api/positions`` (the same JSON as the MCP tool)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from routes import services
from services.position_service import PositionService
from services.position_views import get_positions_view

bp = Blueprint("positions", __name__)


@bp.get("/api/positions")
def api_positions():  # type: ignore[no-untyped-def]
    format_ = request.args.get("format", "full")
    refresh_provider = request.args.get("refresh_provider") or None
    return jsonify(get_positions_view(services().positions, format_, refresh_provider))


@bp.get("/")
def positions_page():  # type: ignore[no-untyped-def]
    view = get_positions_view(services().positions, "by_account")
    summary = get_positions_view(services().positions, "summary")
    return render_template(
        "positions.html",
        view=view,
        summary=summary["summary"],
        refresh_hours={p: PositionService.cache_hours_for_provider(p) for p in view["cache_info"]},
    )
