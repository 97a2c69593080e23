"""What each provider really costs, and what wastes money.

Billing facts (PROVIDERS.md): Plaid Investments Holdings is a monthly fee per
Item while a valid access token exists, called or not; only
``/investments/refresh`` is billed per call; ``/item/remove`` is the only way to
stop the fee. SnapTrade bills per connected user per month. So the report
counts Items and users, not API calls, and uses the call ledger for the
per-call part and for the record of what was called.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from services.models import ProviderCall
from services.normalized import institution_display_name

if TYPE_CHECKING:
    from services.composition import Services

REFRESH_ENDPOINT = "POST /investments/refresh"
LEDGER_DAYS = 30


class CostService:
    def __init__(self, services: Services) -> None:
        self._services = services

    def report(self) -> dict[str, Any]:
        from plaid_loader import institution_slug_of
        from services.secret_store import plaid_tokens_prefix, snaptrade_user_secret_name

        services = self._services
        settings = services.settings
        store = services.secret_store
        email = services.user_email
        prefix = plaid_tokens_prefix(email)
        connections = {c.external_id: c for c in services.connections.list(email, "plaid")}
        waste: list[str] = []

        items: list[dict[str, Any]] = []
        for name in store.list_names(prefix):
            slug = institution_slug_of(name)
            state = connections.get(slug)
            items.append(
                {
                    "institution": (state and state.institution_name)
                    or institution_display_name(slug),
                    "secret_name": name,
                    "billable": True,
                    "status": state.status if state else "unknown",
                }
            )
        for name in store.list_scheduled(prefix):
            slug = institution_slug_of(name)
            state = connections.get(slug)
            removed = state is not None and state.status == "removed"
            items.append(
                {
                    "institution": (state and state.institution_name)
                    or institution_display_name(slug),
                    "secret_name": name,
                    "billable": not removed,
                    "status": "token scheduled for deletion",
                }
            )
            if not removed:
                waste.append(
                    f"{name} is scheduled for deletion but its Item was never removed at "
                    "Plaid: it is still billed. Restore the secret and remove the Item "
                    "(remove_plaid_institution with dry_run=False)."
                )
        live_by_institution: dict[str, list[str]] = defaultdict(list)
        for item in items:
            if item["status"] != "token scheduled for deletion":
                live_by_institution[item["institution"]].append(item["secret_name"])
        for institution, names in sorted(live_by_institution.items()):
            if len(names) > 1:
                waste.append(
                    f"{institution} has {len(names)} Plaid Items ({', '.join(names)}): each is "
                    "billed and they can break each other; keep one."
                )
        overlaps = self._overlaps()
        for overlap in overlaps:
            waste.append(
                f"{overlap['institution']} is linked through both "
                f"{' and '.join(overlap['providers'])}; end the second bill with: "
                f"{overlap['resolve_with']}"
            )

        billable_items = sum(1 for item in items if item["billable"])
        refresh_calls = self._ledger_count(REFRESH_ENDPOINT)
        snaptrade_users = 1 if store.exists(snaptrade_user_secret_name(email)) else 0
        plaid_monthly = round(billable_items * settings.plaid_item_monthly_usd, 2)
        plaid_calls = round(refresh_calls * settings.plaid_refresh_call_usd, 2)
        snaptrade_monthly = round(snaptrade_users * settings.snaptrade_user_monthly_usd, 2)
        return {
            "plaid": {
                "items": items,
                "billable_items": billable_items,
                "item_monthly_usd": settings.plaid_item_monthly_usd,
                "monthly_usd": plaid_monthly,
                "refresh_calls_last_30_days": refresh_calls,
                "refresh_call_usd": settings.plaid_refresh_call_usd,
                "refresh_calls_usd": plaid_calls,
            },
            "snaptrade": {
                "connected_users": snaptrade_users,
                "user_monthly_usd": settings.snaptrade_user_monthly_usd,
                "monthly_usd": snaptrade_monthly,
            },
            "estimated_monthly_usd": round(plaid_monthly + plaid_calls + snaptrade_monthly, 2),
            "waste": waste,
            "calls_by_day": services.ledger.daily_counts(LEDGER_DAYS),
            "note": (
                "Fees are the PLAID_ITEM_MONTHLY_USD, PLAID_REFRESH_CALL_USD and "
                "SNAPTRADE_USER_MONTHLY_USD settings: set them from your contracts."
            ),
        }

    def _overlaps(self) -> list[dict[str, Any]]:
        from services.overlaps import find_overlaps

        positions = self._services.positions
        overlaps, _ = find_overlaps(positions.get_cached_positions(), positions.provider_priority)
        return [o.to_dict() for o in overlaps]

    def _ledger_count(self, endpoint: str) -> int:
        from datetime import timedelta

        since = self._services.clock() - timedelta(days=LEDGER_DAYS)
        with self._services.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(ProviderCall)
                    .where(ProviderCall.endpoint == endpoint, ProviderCall.called_at >= since)
                ).scalar_one()
            )
