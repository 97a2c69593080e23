"""SnapTrade: the connections page, the connection portal (new, reconnect, upgrade) and its return.

The portal is reached through a page with a plain link rather than a redirect
from our form post: the CSP's ``form-action 'self'`` also covers redirects.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from core.errors import NotFound, ProviderError
from routes.common import public_url, services
from routes.linking_pages import render_connections

bp = Blueprint("snaptrade", __name__)


@bp.get("/snaptrade/")
def connections() -> Any:
    return render_connections(("snaptrade",), title="SnapTrade")


@bp.post("/snaptrade/connect")
def start_connection() -> Any:
    """Open the portal: ``connection_type`` read or trade; ``reconnect`` an authorization id."""
    try:
        flow = services().snaptrade_portal.start_snaptrade_connection(
            request.form.get("connection_type", "read"),
            request.form.get("reconnect") or None,
            return_url=lambda flow_id: public_url("snaptrade.connection_returned", flow_id=flow_id),
        )
    except ProviderError as exc:
        flash(f"The SnapTrade portal could not be opened: {exc.message}", "error")
        return redirect(url_for("snaptrade.connections"), code=303)
    return redirect(url_for("snaptrade.portal", flow_id=flow.flow_id), code=303)


@bp.get("/snaptrade/connect/<flow_id>")
def portal(flow_id: str) -> Any:
    try:
        flow = services().snaptrade_portal.snaptrade_flow(flow_id)
    except NotFound as exc:
        flash(exc.message, "error")
        return redirect(url_for("snaptrade.connections"), code=303)
    return render_template("snaptrade_portal.html", flow=flow)


@bp.get("/snaptrade/connected/<flow_id>")
def connection_returned(flow_id: str) -> Any:
    """Where the portal sends the person back: fetch SnapTrade positions once."""
    try:
        outcome = services().snaptrade_portal.finish_snaptrade_connection(flow_id)
    except NotFound as exc:
        flash(exc.message, "error")
        return redirect(url_for("snaptrade.connections"), code=303)
    flash(outcome.message, "info" if outcome.ok else "error")
    return redirect(url_for("snaptrade.connections"), code=303)
