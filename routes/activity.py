"""Activity: the accounts' history with filters, and a monthly income chart."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from core.activities import ACTIVITY_TYPES
from routes.common import services
from routes.income_chart import monthly_income_chart

bp = Blueprint("activity", __name__)

FILTERS = ("start_date", "end_date", "type", "account_id", "ticker")


@bp.get("/activity")
def activity_page() -> Any:
    wanted = {name: request.args.get(name) or None for name in FILTERS}
    hub = services()
    answer = hub.activities.activities(
        wanted["start_date"],
        wanted["end_date"],
        wanted["type"],
        wanted["account_id"],
        wanted["ticker"],
        limit=100,
        cursor=request.args.get("cursor") or None,
    )
    income = hub.activities.income("last_12_months")
    return render_template(
        "activity.html",
        answer=answer,
        income=income,
        chart=monthly_income_chart(income),
        filters={k: v or "" for k, v in wanted.items()},
        types=ACTIVITY_TYPES,
    )


@bp.post("/activity/sync")
def sync_activity() -> Any:
    """Sync every provider's history now (the page's button)."""
    outcome = services().activities.sync_now()
    if outcome["ok"]:
        flash("Activity history synced.", "info")
    else:
        failed = "; ".join(f"{p}: {e}" for p, e in outcome["errors"].items())
        flash(f"Activity sync failed for {failed}", "error")
    return redirect(url_for("activity.activity_page"), code=303)
