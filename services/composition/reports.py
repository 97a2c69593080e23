"""Builds the reporting services: connection health and the cost report."""

from __future__ import annotations

from collections.abc import Callable

from services.clock import Clock
from services.connections.health import HealthService
from services.connections.provider_access import ProviderAccess
from services.connections.registry import ConnectionRegistry
from services.costs.ledger import SqlCallLedger
from services.costs.report import CostService, Fees
from services.positions.service import PositionService
from services.webhooks.savings import RefreshSavings
from settings import Settings


def build_health(
    settings: Settings,
    *,
    access: ProviderAccess,
    connections: ConnectionRegistry,
    clock: Clock,
    snaptrade_client_id: Callable[[], str],
) -> HealthService:
    return HealthService(
        access,
        connections,
        clock,
        snaptrade_client_id=snaptrade_client_id,
        environments=settings.provider_envs,
    )


def build_costs(
    settings: Settings,
    *,
    access: ProviderAccess,
    connections: ConnectionRegistry,
    ledger: SqlCallLedger,
    positions: PositionService,
    savings: RefreshSavings,
    failed_key_lookups: Callable[[], int],
) -> CostService:
    return CostService(
        access,
        connections,
        ledger,
        positions,
        Fees(
            plaid_item_monthly=settings.plaid_item_monthly_usd,
            plaid_refresh_call=settings.plaid_refresh_call_usd,
            snaptrade_user_monthly=settings.snaptrade_user_monthly_usd,
        ),
        environments=settings.provider_envs,
        savings=savings,
        failed_key_lookups=failed_key_lookups,
    )
