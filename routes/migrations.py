"""Moving an institution from Plaid to SnapTrade in the browser: the checks (changing
nothing), a typed confirmation, the steps live, and every past run with its report.

The same service and guarantees as the CLI and the MCP tool (``services.migration``):
one run per institution at a time on every worker, nothing removed before the gates
pass, and a run interrupted after the removal completed by whoever opens it next. A
run goes on in the background, so a closed tab loses nothing; the run page polls
``/migrations/runs/<id>/progress`` with ``static/migration_progress.js``.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.errors import BrokerageHubError, InvalidInput, NotFound, bounded_message
from routes.common import services
from services.migration.report import validate_migration
from services.migration.runs import MigrationInProgress

bp = Blueprint("migrations", __name__)

RECENT_RUNS = 50
ACTIVE = ("running", "executing", "removed")
# A plan whose checks passed, or a run interrupted after the removal (to complete it).
CONFIRMABLE = ("planned", "executing", "removed")


@bp.get("/migrations")
def migrations_page() -> Any:
    return render_template("migrations.html", runs=services().migrations.runs(RECENT_RUNS))


@bp.get("/migrations/<institution>")
def migration_page(institution: str) -> Any:
    migrations = services().migrations
    try:
        active = migrations.active_run(_slug(institution))
    except InvalidInput as exc:
        flash(bounded_message(exc.message), "error")
        return redirect(url_for("migrations.migrations_page"), code=303)
    if active is not None:
        # A second tab (or worker) sees the run in progress, never starts another.
        return redirect(url_for("migrations.run_page", run_id=active["id"]), code=303)
    return render_template(
        "migration.html",
        institution_slug=institution,
        runs=migrations.runs(RECENT_RUNS, institution),
    )


@bp.post("/migrations/<institution>/check")
def check_move(institution: str) -> Any:
    """Run the checks (gate, holdings comparison, dry run, saving): changes nothing."""
    return _start(institution, execute=False)


@bp.post("/migrations/runs/<int:run_id>/execute")
def execute_move(run_id: int) -> Any:
    """The person typed the institution's name under a plan: move it for real."""
    try:
        run = services().migrations.run(run_id)
    except NotFound as exc:
        flash(exc.message, "error")
        return redirect(url_for("migrations.migrations_page"), code=303)
    report = run["report"]
    typed = request.form.get("confirm_institution", "")
    if run["status"] not in CONFIRMABLE:
        flash(
            f"Run {run_id} is {run['status']}: only a plan that passed its checks can be "
            "confirmed. Check the move again.",
            "error",
        )
        return redirect(url_for("migrations.run_page", run_id=run_id), code=303)
    if _plain(typed) != _plain(report["institution"]):
        flash(
            f"Nothing was moved: type the institution's name exactly ({report['institution']}) "
            "to confirm.",
            "error",
        )
        return redirect(url_for("migrations.run_page", run_id=run_id), code=303)
    return _start(run["institution_slug"], execute=True)


@bp.get("/migrations/runs/<int:run_id>")
def run_page(run_id: int) -> Any:
    try:
        run = services().migrations.run(run_id)
    except NotFound as exc:
        flash(exc.message, "error")
        return redirect(url_for("migrations.migrations_page"), code=303)
    return render_template("migration_run.html", run=run, active=_following(run))


@bp.get("/migrations/runs/<int:run_id>/progress")
def run_progress(run_id: int) -> Any:
    run = services().migrations.run(run_id)
    return jsonify(
        {
            "run_id": run["id"],
            "status": run["status"],
            "active": _following(run),
            "steps": [
                {"step": s.get("step"), "ok": s.get("ok"), "summary": s.get("summary")}
                for s in run["report"].get("steps", [])
            ],
        }
    )


def _start(institution: str, *, execute: bool) -> Any:
    try:
        run_id = services().migrations.start(_slug(institution), execute=execute)
    except MigrationInProgress as exc:
        flash(exc.message, "info")
        return redirect(url_for("migrations.run_page", run_id=exc.run_id), code=303)
    except BrokerageHubError as exc:
        flash(bounded_message(exc.message), "error")
        return redirect(url_for("migrations.migrations_page"), code=303)
    return redirect(url_for("migrations.run_page", run_id=run_id), code=303)


def _following(run: dict[str, Any]) -> bool:
    """Whether the run is going on now (its page keeps following it)."""
    return run["status"] in ACTIVE and not run["stalled"]


def _slug(institution: str) -> str:
    slug = institution.strip().lower()
    validate_migration(slug, "plaid", "snaptrade", 0.0)
    return slug


def _plain(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().casefold()
