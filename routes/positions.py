"""Positions: the page, ``GET /api/positions`` (the MCP tool's JSON) and a one-provider refresh."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.normalized import PROVIDERS
from routes.charts import allocation_charts
from routes.common import services, whole_number

bp = Blueprint("positions", __name__)

PROVIDER_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


@bp.get("/api/positions")
def api_positions() -> Any:
    format_ = request.args.get("format", "full")
    refresh_provider = request.args.get("refresh_provider") or None
    limit = request.args.get("limit")
    answer = services().position_views.answer(
        format_,
        refresh_provider,
        limit=whole_number(limit, "limit") if limit is not None else None,
        cursor=request.args.get("cursor"),
    )
    # As the get_positions tool answers: with each provider's environment.
    return jsonify({**answer, "environments": services().settings.provider_envs})


@bp.get("/")
def positions_page() -> Any:
    view = services().position_views.answer("by_account", positions_per_account=None)
    summary = services().position_views.answer("summary")
    return render_template(
        "positions.html",
        view=view,
        summary=summary["summary"],
        summary_answer=summary,
        charts=allocation_charts(summary["summary"], summary["fx"]),
        overlaps=view.get("overlaps") or summary.get("overlaps") or [],
        providers=PROVIDERS,
        provider_names=PROVIDER_NAMES,
        refresh_hours={p: services().positions.cache_hours_for_provider(p) for p in PROVIDERS},
    )


@bp.post("/positions/refresh")
def refresh_provider() -> Any:
    """Fetch one provider now (the page's refresh button); bad input is a 400."""
    provider = request.form.get("provider", "")
    outcome = services().position_views.answer("list", provider)["refresh"]
    name = PROVIDER_NAMES[provider]
    if outcome["ok"]:
        flash(f"{name} positions refreshed.", "info")
    else:
        flash(f"{name} refresh failed: {outcome['error']}", "error")
    return redirect(url_for("positions.positions_page"), code=303)
