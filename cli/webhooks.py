"""Webhooks from the terminal: apply what they announced, and point Plaid Items at them."""

from __future__ import annotations

from typing import Any

from flask import Flask

from cli.housekeeping import clean_up
from cli.output import run_cli
from services.composition.webhooks import plaid_webhook_url
from services.webhooks.plaid_items import update_plaid_webhooks


def register(app: Flask) -> None:
    @app.cli.command("process-webhooks")
    def process_webhooks() -> None:
        """Fetch what webhooks said changed: due Items and accounts, due activity (cron);
        then delete finished and abandoned records (links, sessions, attempts, old events)."""

        def run() -> dict[str, Any]:
            hub = app.extensions["services"]
            pending = hub.webhooks.apply_pending()
            state = hub.positions.ensure_fresh()
            return {
                "events_applied": pending,
                "positions": {
                    p: {"stale": bool(m.get("stale")), "error": m.get("error")}
                    for p, m in state.metadata.items()
                },
                "activities": hub.activities.sync_due(),
                "cleaned_up": clean_up(hub),
            }

        run_cli(run)

    @app.cli.command("update-plaid-webhooks")
    def point_plaid_items_here() -> None:
        """Point every linked Plaid Item at PUBLIC_BASE_URL/webhooks/plaid."""
        hub = app.extensions["services"]
        run_cli(
            lambda: update_plaid_webhooks(
                hub.access, hub.connections, plaid_webhook_url(hub.settings)
            ),
            ok=lambda report: report["ok"],
        )
