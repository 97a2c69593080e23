"""Trades: the audit of previews and orders, and the page where a person confirms one.

A preview made by the assistant can only be placed after a person confirms it. A client
that cannot ask them sends them here (``/trades/<preview_id>``): the order in full, then
Confirm (which places it, once) or Reject (which ends it for good). Both are form posts
behind the login and the CSRF token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from core.errors import BrokerageHubError, NotFound, bounded_message
from routes.common import services

bp = Blueprint("trades", __name__)

RECENT_TRADES = 50


@bp.get("/trades")
def trades_page() -> Any:
    svc = services()
    return render_template(
        "trades.html",
        trades=svc.trading.list_trades(RECENT_TRADES),
        trading=svc.trading.policy.describe(),
    )


@bp.get("/trades/<preview_id>")
def trade_page(preview_id: str) -> Any:
    try:
        trade = services().trading.review(preview_id)
    except NotFound as exc:
        flash(bounded_message(exc.message), "error")
        return redirect(url_for("trades.trades_page"), code=303)
    return render_template("trade.html", trade=trade)


@bp.post("/trades/<preview_id>/confirm")
def confirm_trade(preview_id: str) -> Any:
    """The person confirmed this exact order: place it (at most once)."""
    try:
        placed = services().trading.confirm_and_place(preview_id, via="web")
    except NotFound as exc:
        flash(bounded_message(exc.message), "error")
        return redirect(url_for("trades.trades_page"), code=303)
    except BrokerageHubError as exc:
        flash(f"The order was not placed: {bounded_message(exc.message)}", "error")
    else:
        order_id = placed.get("brokerage_order_id") or "no order id yet"
        if placed.get("already_executed"):
            # A resent form or a second click: say so, not that it was placed again.
            flash(f"This order was already placed ({order_id}); nothing more was placed.", "info")
        else:
            flash(f"Order placed at the brokerage ({order_id}).", "info")
    return redirect(url_for("trades.trade_page", preview_id=preview_id), code=303)


@bp.post("/trades/<preview_id>/reject")
def reject_trade(preview_id: str) -> Any:
    """The person said no: the preview can never be placed."""
    try:
        services().trading.reject(preview_id, via="web")
    except NotFound as exc:
        flash(bounded_message(exc.message), "error")
        return redirect(url_for("trades.trades_page"), code=303)
    except BrokerageHubError as exc:
        flash(bounded_message(exc.message), "error")
    else:
        flash("Rejected: this order will not be placed.", "info")
    return redirect(url_for("trades.trade_page", preview_id=preview_id), code=303)
