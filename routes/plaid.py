"""Plaid: the Items page, Hosted Link (new Item or update mode) and its progress.

Linking runs as a background job (``services.linking.plaid_link``); the progress page
polls ``GET /api/plaid/link/<job_id>`` with ``static/link_progress.js``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from core.errors import NotFound, ProviderError
from routes.common import public_url, services
from routes.linking_pages import render_connections
from services.linking.plaid_link import DEFAULT_POLL_SECONDS

bp = Blueprint("plaid", __name__)


def _poll_seconds() -> float:
    # Tests make this short; Plaid's own advice for /link/token/get polling is ~10 s.
    return float(current_app.config.get("PLAID_LINK_POLL_SECONDS", DEFAULT_POLL_SECONDS))


def _progress_url(job_id: str) -> str:
    return public_url("plaid.link_progress", job_id=job_id)


@bp.get("/plaid/")
def connections() -> Any:
    return render_connections(("plaid",), title="Plaid")


@bp.post("/plaid/link")
def start_link() -> Any:
    """Link a new institution through Plaid Hosted Link."""
    try:
        job = services().plaid_link.start_plaid_link(
            completion_url=_progress_url, poll_seconds=_poll_seconds()
        )
    except ProviderError as exc:
        flash(f"Plaid Link could not be started: {exc.message}", "error")
        return redirect(url_for("plaid.connections"), code=303)
    return redirect(url_for("plaid.link_progress", job_id=job.job_id), code=303)


@bp.post("/plaid/update")
def start_update() -> Any:
    """Link update mode for an existing Item (re-login, or instead of a duplicate)."""
    slug = request.form.get("institution", "")
    try:
        job = services().plaid_link.start_plaid_update(
            slug, completion_url=_progress_url, poll_seconds=_poll_seconds()
        )
    except ProviderError as exc:
        flash(f"Plaid Link update mode could not be started: {exc.message}", "error")
        return redirect(url_for("plaid.connections"), code=303)
    return redirect(url_for("plaid.link_progress", job_id=job.job_id), code=303)


@bp.get("/plaid/link/<job_id>")
def link_progress(job_id: str) -> Any:
    try:
        job = services().plaid_link.plaid_job(job_id)
    except NotFound as exc:
        flash(exc.message, "error")
        return redirect(url_for("plaid.connections"), code=303)
    return render_template("plaid_link.html", job=job.to_dict())


@bp.get("/api/plaid/link/<job_id>")
def link_status(job_id: str) -> Any:
    return jsonify(services().plaid_link.plaid_job(job_id).to_dict())
