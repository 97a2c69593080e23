"""Assembling the activity history's collaborators (part of the composition root)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from providers.snaptrade.accounts import list_user_accounts
from services.activities.store import ActivityStore
from services.activities.sync import ActivitySyncer
from services.activities.views import ActivityViews, RateSource
from services.clock import Clock
from services.connections.provider_access import ProviderAccess
from services.positions.service import PositionService
from services.single_flight import SingleFlight
from settings import Settings


def snaptrade_accounts(access: ProviderAccess, positions: PositionService) -> list[dict[str, Any]]:
    """The person's SnapTrade accounts as the position cache knows them (no provider call);
    asked of SnapTrade only when that cache holds none yet."""
    rows, _ = positions.read_cached()
    accounts: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["provider"] == "snaptrade":
            accounts.setdefault(
                row["account_id"],
                {
                    "id": row["account_id"],
                    "institution_name": row["institution"],
                    "name": row["account_name"],
                },
            )
    if accounts:
        return list(accounts.values())
    secret = access.snaptrade_user_secret()
    if secret is None:
        return []
    return list_user_accounts(access.snaptrade_client(), access.user_email, secret)


def build_activity_views(
    settings: Settings,
    *,
    engine: Engine,
    user_email: str,
    clock: Clock,
    access: ProviderAccess,
    positions: PositionService,
    rates: RateSource,
) -> ActivityViews:
    store = ActivityStore(engine, user_email, clock)
    environments = settings.provider_envs
    syncer = ActivitySyncer(
        store,
        access,
        clock=clock,
        snaptrade_accounts=lambda: snaptrade_accounts(access, positions),
        ttl_hours=settings.activity_cache_hours,
        lookback_days=settings.activity_lookback_days,
        single_flight=SingleFlight(engine, wait_seconds=settings.provider_timeout_seconds * 3),
    )
    return ActivityViews(
        store,
        syncer,
        rates,
        base_currency=settings.base_currency,
        priority=settings.provider_priority,
        enabled=lambda: [p for p, env in environments.items() if env != "disabled"],
        environments=environments,
        clock=clock,
    )
