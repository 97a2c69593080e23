"""The scheduler's clean-up: finished and abandoned records go even when no related action
(a new link, a login) comes along to clear them on its way."""

from __future__ import annotations

from typing import Any

from services.linking.link_store import forget_old_links
from services.webhooks.log import forget_old_events


def clean_up(hub: Any) -> dict[str, int]:
    """Delete what is past keeping (the same rules the related actions apply); counts by kind."""
    now = hub.clock()
    with hub.engine.begin() as conn:
        removed = forget_old_links(conn, now)
        removed["webhook_events"] = forget_old_events(conn, now)
        removed["plaid_webhook_keys"] = hub.webhooks.plaid_keys.forget_old(conn, now)
    removed["web_sessions"] = hub.web_auth.sessions.forget_ended()
    removed["login_attempts"] = hub.web_auth.brake.forget_old()
    removed["provider_calls"] = hub.ledger.forget_old()
    removed["avoided_refreshes"] = hub.savings.forget_old()
    return removed
