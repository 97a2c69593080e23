"""Positions: the page, ``GET /api/positions`` (the MCP tool's JSON) and a one-provider refresh.

A refresh costs provider calls, so it is never a GET (a link on another site could make a
logged-in browser follow one): it is ``POST /positions/refresh`` with the session's CSRF
token, from the page's button, or from a script with ``Accept: application/json`` for the
same JSON as ``GET /api/positions``.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.errors import InvalidInput
from core.normalized import PROVIDERS
from routes.charts import allocation_charts
from routes.common import services, wants_json, whole_number

bp = Blueprint("positions", __name__)

PROVIDER_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


@bp.get("/api/positions")
def api_positions() -> Any:
    if request.args.get("refresh_provider"):
        raise InvalidInput(
            "a refresh costs provider calls, so GET never refreshes: POST /positions/refresh "
            "with provider and the session's X-CSRF-Token header (Accept: application/json "
            "answers this same JSON)",
            field="refresh_provider",
        )
    return _json_answer(request.args, None)


def _json_answer(fields: Any, refresh_provider: str | None) -> Any:
    limit = fields.get("limit")
    answer = services().position_views.answer(
        fields.get("format", "full"),
        refresh_provider,
        limit=whole_number(limit, "limit") if limit is not None else None,
        cursor=fields.get("cursor"),
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
    if wants_json():
        return _json_answer(request.form, provider)
    answer = services().position_views.answer("list", provider)
    flash(*refresh_message(PROVIDER_NAMES[provider], answer))
    return redirect(url_for("positions.positions_page"), code=303)


def refresh_message(name: str, answer: dict[str, Any]) -> tuple[str, str]:
    """What the page says a refresh did: the flash message and its category."""
    outcome = answer["refresh"]
    if not outcome["ok"]:
        return f"{name} refresh failed: {outcome['error']}", "error"
    done = answer["cache_info"][outcome["provider"]]["refresh"]
    if done["reason"] != "cooldown":
        return f"{name} positions refreshed.", "info"
    minutes = math.ceil(done["retry_after_seconds"] / 60)
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    if done["done"]:
        kept = len(done["sources_from_cache"])
        return (
            f"{name} positions refreshed, except {kept} fetched in the last few minutes: "
            f"those show the rows just fetched (they can be fetched again in {wait}).",
            "info",
        )
    return (
        f"{name} positions were fetched in the last few minutes: these are those rows, "
        f"without calling {name} again. A refresh can fetch again in {wait}.",
        "info",
    )
