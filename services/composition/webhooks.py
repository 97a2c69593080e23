"""Assembling the webhook receiver and the position cache it feeds (composition root)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from providers.plaid.webhooks import fetch_verification_key
from services.clock import Clock
from services.connections.provider_access import ProviderAccess
from services.connections.registry import ConnectionRegistry
from services.positions.fetchers import PlaidPositionsFetcher, SnapTradePositionsFetcher
from services.positions.service import PositionFetcher, PositionService
from services.webhooks.apply import EventEffects
from services.webhooks.freshness import FreshnessStore
from services.webhooks.plaid_keys import PlaidKeyStore
from services.webhooks.receiver import WebhookReceiver
from services.webhooks.savings import RefreshSavings
from settings import Settings


def build_positions(
    settings: Settings,
    *,
    engine: Engine,
    user_email: str,
    clock: Clock,
    access: ProviderAccess,
    connections: ConnectionRegistry,
    freshness: FreshnessStore,
    savings: RefreshSavings,
) -> PositionService:
    environments = settings.provider_envs
    fetchers: dict[str, PositionFetcher] = {
        "plaid": PlaidPositionsFetcher(access, connections, clock),
        "snaptrade": SnapTradePositionsFetcher(access, connections, clock),
    }
    return PositionService(
        engine=engine,
        user_email=user_email,
        # A disabled provider gets no fetcher: it is never fetched, nor its rows read.
        fetchers={p: f for p, f in fetchers.items() if environments[p] != "disabled"},
        clock=clock,
        provider_priority=settings.provider_priority,
        cache_hours=settings.provider_cache_hours,
        environments=environments,
        freshness=freshness,
        safety_hours=settings.webhook_safety_hours,
        savings=savings,
        refresh_cooldown_seconds=settings.refresh_cooldown_seconds,
    )


def build_receiver(
    *,
    engine: Engine,
    clock: Clock,
    plaid_client: Callable[[], Any],
    snaptrade_consumer_key: str,
    connections: ConnectionRegistry,
    freshness: FreshnessStore,
    link_finished: Callable[[str, list[str]], None],
    knows_link_token: Callable[[str], bool],
    sleep: Callable[[float], None],
) -> WebhookReceiver:
    keys = PlaidKeyStore(
        engine,
        clock,
        fetch=lambda kid: fetch_verification_key(plaid_client(), kid),
        knows_subject=known_plaid_subject(connections, knows_link_token),
        sleep=sleep,
    )
    return WebhookReceiver(
        engine,
        clock,
        plaid_keys=keys,
        snaptrade_consumer_key=snaptrade_consumer_key,
        effects=EventEffects(engine, connections, freshness, link_finished),
    )


def known_plaid_subject(
    connections: ConnectionRegistry, knows_link_token: Callable[[str], bool]
) -> Callable[[dict[str, Any]], bool]:
    """Whether a Plaid event names an Item or a Hosted Link session of this hub: what an
    outsider cannot guess, so only such an event may cost a key lookup."""

    def knows(payload: dict[str, Any]) -> bool:
        item_id = payload.get("item_id")
        if (
            isinstance(item_id, str)
            and 0 < len(item_id) <= 200
            and connections.owner_of_item(item_id) is not None
        ):
            return True
        token = payload.get("link_token")
        return isinstance(token, str) and 0 < len(token) <= 200 and knows_link_token(token)

    return knows


def plaid_webhook_url(settings: Settings) -> str | None:
    """Where Plaid sends this deployment's webhooks: PUBLIC_BASE_URL's /webhooks/plaid."""
    base = settings.public_base_url
    return f"{base.rstrip('/')}/webhooks/plaid" if base else None
