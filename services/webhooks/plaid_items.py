"""Pointing the Plaid Items linked before webhooks were set up at this deployment's URL."""

from __future__ import annotations

from typing import Any

from core.errors import BrokerageHubError, ConfigError
from providers.plaid.items import institution_slug_of
from providers.plaid.webhooks import update_item_webhook
from services.connections import ConnectionRegistry, ProviderAccess


def update_plaid_webhooks(
    access: ProviderAccess, connections: ConnectionRegistry, url: str | None
) -> dict[str, Any]:
    """``/item/webhook/update`` for every linked Item; Plaid then confirms with
    WEBHOOK_UPDATE_ACKNOWLEDGED. One line per Item, an error never stops the others."""
    if not url:
        raise ConfigError(
            "PUBLIC_BASE_URL is not set: set it to where Plaid reaches this app "
            "(https://...), then run this again"
        )
    items = []
    for name in access.plaid_token_names():
        slug = institution_slug_of(name)
        try:
            item_id = update_item_webhook(
                access.plaid_token(name), access.plaid_client(), url, subject=slug
            )
        except BrokerageHubError as exc:
            items.append({"institution": slug, "ok": False, "error": exc.message})
        else:
            if item_id:  # its acknowledgement, and every later webhook, name this Item
                connections.note_item_id(access.user_email, slug, item_id)
            items.append({"institution": slug, "ok": True, "error": None})
    return {"ok": all(i["ok"] for i in items), "webhook_url": url, "items": items}
