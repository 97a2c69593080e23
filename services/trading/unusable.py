"""Whether a preview can go on to the next step, and in words why not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import Conflict
from services.trading.orders import aware, iso, row_hash
from services.trading.policy import TradingPolicy


def refuse_unusable(
    row: dict[str, Any],
    now: datetime,
    policy: TradingPolicy,
    user_email: str,
    *,
    allow: tuple[str, ...],
) -> bool:
    """True for an executed preview (the caller answers with its order); raises Conflict for
    one that cannot go on; False when its status is one of ``allow`` and it is still valid."""
    preview_id, status = row["preview_id"], row["status"]
    if status == "executed":
        return True
    if status == "placing":
        raise Conflict(
            f"preview {preview_id} is being placed by another request right now; it will not "
            "be placed twice. Call execute_trade again in a moment for its result (list_trades "
            "shows it too)."
        )
    if status == "refused":
        raise Conflict(
            f"preview {preview_id} was refused ({row['error']}); nothing can be executed from "
            "it. Preview the order again."
        )
    if status == "rejected":
        raise Conflict(
            f"preview {preview_id} was rejected by the person; it will never be placed. "
            "Preview a new order only if they ask for one."
        )
    if status == "unknown":
        raise Conflict(
            f"preview {preview_id} was already used and SnapTrade never confirmed whether the "
            "order was placed: check the brokerage before ordering again."
        )
    if status == "previewed" and "previewed" not in allow:
        where = policy.trades_page(preview_id) or "the web app's trades page"
        raise Conflict(
            f"preview {preview_id} has not been confirmed by the person: they confirm it on "
            f"{where} or with `flask --app app confirm-trade {preview_id}`; nothing was placed."
        )
    if status not in allow:
        raise Conflict(
            f"preview {preview_id} was already used ({status}: {row['error']}): preview the "
            "order again"
        )
    expires_at = aware(row["expires_at"])
    if expires_at is None or now >= expires_at:
        raise Conflict(
            f"preview {preview_id} expired at {iso(expires_at)} (previews last "
            f"{int(policy.preview_lifetime.total_seconds())} s): preview the order again"
        )
    if row_hash(user_email, row) != row["order_hash"]:
        raise Conflict(
            f"preview {preview_id} no longer matches the order it was made for; preview the "
            "order again"
        )
    return False
