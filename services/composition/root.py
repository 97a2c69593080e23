"""The composition root: the one place that builds the engine, clients, store and services.

Entry points call :func:`build_services` once and pass the result around; each
service is built here with exactly the collaborators it uses. Nothing connects
at import time; the engine, the secret store and the SDK clients are made on
first use, so the MCP server answers its handshake before any of them exist.
On the embedded default the demo user is seeded as one explicit step of the build.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

from sqlalchemy import Engine

from core.errors import SchemaBehind
from core.secret_names import snaptrade_user_secret_name
from core.secret_store import SecretStore
from providers.calls import RetryPolicy
from providers.secret_stores import build_secret_store
from providers.snaptrade.broker import SnapTradeBrokerAdapter
from services.activities.views import ActivityViews
from services.background import in_a_thread
from services.clock import Clock, system_clock
from services.composition.activity import build_activity_views
from services.composition.clients import ProviderClients, ProviderEndpoint, endpoint_for
from services.composition.reports import build_costs, build_health
from services.composition.web import build_web_auth
from services.composition.webhooks import build_positions, build_receiver, plaid_webhook_url
from services.connections.health import HealthService
from services.connections.provider_access import ProviderAccess
from services.connections.registry import ConnectionRegistry
from services.costs.ledger import SqlCallLedger
from services.costs.report import CostService
from services.fx.store import FxStore
from services.linking.link_store import LinkStore
from services.linking.plaid_link import PlaidLinkService
from services.linking.removal import PlaidItemRemoval
from services.linking.snaptrade_portal import SnapTradePortalService
from services.migration.runs import MigrationRuns
from services.migration.service import MigrationService
from services.positions.service import PositionService
from services.positions.views import PositionViews
from services.single_flight import SingleFlight
from services.storage.db import make_engine, schema_state, upgrade_schema
from services.trading.policy import TradingPolicy
from services.trading.service import TradeExecutionService
from services.web_access.auth import WebAuth
from services.webhooks.freshness import FreshnessStore
from services.webhooks.receiver import WebhookReceiver
from services.webhooks.savings import RefreshSavings
from settings import Settings, load_settings

log = logging.getLogger(__name__)


class Services:
    """Everything the entry points use, built once per process from the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        emulator: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        background: Callable[[Callable[[], None]], None] = in_a_thread,
    ) -> None:
        self.settings = settings
        self._background = background
        self.clock = clock
        self.retry_policy = RetryPolicy(attempts=settings.provider_retry_attempts, sleep=sleep)
        self._emulator = emulator
        self._lock = threading.Lock()

    @property
    def user_email(self) -> str:
        return self.settings.default_user_email

    @property
    def emulator_mode(self) -> bool:
        """Both providers are the local emulator: no real account can be reached."""
        return self.settings.plaid_env == "emulator" and self.settings.snaptrade_env == "emulator"

    # --- storage ---------------------------------------------------------------------

    @cached_property
    def database(self) -> Engine:
        """The engine, whatever its schema: only ``migrate`` uses it as it is."""
        return make_engine(self.settings.database_url)

    @cached_property
    def engine(self) -> Engine:
        """The engine of a schema at the newest migration; every service uses this one.

        Outside the embedded default a schema that is behind raises SchemaBehind (one
        line: run ``flask --app app migrate``), on every use until it is migrated.
        """
        engine = self.database
        if self.emulator_mode:
            # The embedded default must work in one command: migrate on first start.
            upgrade_schema(engine)
            return engine
        problem = schema_state(engine).problem()
        if problem is not None:
            raise SchemaBehind(problem)
        return engine

    def require_current_schema(self) -> None:
        """Raise SchemaBehind unless the schema is current (free once it was)."""
        _ = self.engine

    def migrate_schema(self) -> None:
        """Bring the schema to the newest migration (``flask --app app migrate``)."""
        upgrade_schema(self.database)

    @cached_property
    def secret_store(self) -> SecretStore:
        return build_secret_store(
            self.settings.secrets_backend,
            instance_dir=self.settings.instance_dir,
            region_name=self.settings.aws_region,
        )

    @cached_property
    def ledger(self) -> SqlCallLedger:
        return SqlCallLedger(self.engine, self.clock)

    @cached_property
    def connections(self) -> ConnectionRegistry:
        return ConnectionRegistry(self.engine, self.clock)

    @cached_property
    def fx(self) -> FxStore:
        """The exchange rates every process and host shares (seeded on first use)."""
        return FxStore(
            self.engine,
            self.clock,
            rates_url=self.settings.fx_rates_url,
            timeout_seconds=self.settings.provider_timeout_seconds,
        )

    # --- provider clients (made on first use) ----------------------------------------

    def _emulated_providers(self) -> tuple[str, ...]:
        settings = self.settings
        return tuple(
            provider
            for provider, env in (
                ("plaid", settings.plaid_env),
                ("snaptrade", settings.snaptrade_env),
            )
            if env == "emulator"
        )

    @cached_property
    def _embedded(self) -> Any:
        # Loaded only when a provider is on the emulator: a deployment never imports it.
        from services.composition.embedded import EmbeddedProviders

        return EmbeddedProviders(self.settings.instance_dir, self._emulator)

    def _endpoint(self, provider: str) -> ProviderEndpoint | None:
        """Where ``provider`` answers; None when it is disabled, so no client is ever made."""
        return endpoint_for(self.settings, provider, lambda: self._embedded)

    @cached_property
    def clients(self) -> ProviderClients:
        return ProviderClients(
            self._endpoint,
            timeout_seconds=self.settings.provider_timeout_seconds,
            ledger=self.ledger,
            retry_policy=self.retry_policy,
        )

    def plaid_client(self) -> Any:
        return self.clients.plaid()

    def snaptrade_client(self) -> Any:
        return self.clients.snaptrade()

    def snaptrade_client_id(self) -> str:
        """The SnapTrade client id in use (the emulator's on the embedded default)."""
        if self.settings.snaptrade_client_id:
            return self.settings.snaptrade_client_id
        if self.settings.snaptrade_env == "emulator":
            return str(self._embedded.client_id("snaptrade"))
        return "(SNAPTRADE_CLIENT_ID is not set)"

    @cached_property
    def access(self) -> ProviderAccess:
        return ProviderAccess(self.user_email, self.secret_store, self.clients)

    # --- the demo ----------------------------------------------------------------------

    def seed_demo_user(self) -> None:
        """For providers on the emulator: the demo user's tokens in the secret store, once."""
        from services.composition.embedded import seed_demo_user

        seed_demo_user(
            self.secret_store,
            self.user_email,
            providers=self._emulated_providers(),
            clock=self.clock,
        )

    # --- services --------------------------------------------------------------------

    @cached_property
    def freshness(self) -> FreshnessStore:
        return FreshnessStore(self.engine)

    @cached_property
    def savings(self) -> RefreshSavings:
        return RefreshSavings(self.engine, self.clock)

    @cached_property
    def positions(self) -> PositionService:
        return build_positions(
            self.settings,
            engine=self.engine,
            user_email=self.user_email,
            clock=self.clock,
            access=self.access,
            connections=self.connections,
            freshness=self.freshness,
            savings=self.savings,
        )

    @cached_property
    def webhooks(self) -> WebhookReceiver:
        """Verifies and applies Plaid's and SnapTrade's webhooks (POST /webhooks/...)."""
        snaptrade = self._endpoint("snaptrade")
        return build_receiver(
            engine=self.engine,
            clock=self.clock,
            plaid_client=self.plaid_client,
            snaptrade_consumer_key=snaptrade.secret if snaptrade else "",
            connections=self.connections,
            freshness=self.freshness,
            link_finished=lambda token, public: self._background(
                lambda: self.plaid_link.finish_from_webhook(token, public)
            ),
            knows_link_token=lambda token: bool(self._links.jobs_of_link_token(token)),
            sleep=self.retry_policy.sleep,
        )

    @cached_property
    def position_views(self) -> PositionViews:
        return PositionViews(self.positions, self.connections, self.fx, self.settings.base_currency)

    @cached_property
    def activities(self) -> ActivityViews:
        """Activity history and income: what get_activities and get_income answer."""
        return build_activity_views(
            self.settings,
            engine=self.engine,
            user_email=self.user_email,
            clock=self.clock,
            access=self.access,
            positions=self.positions,
            rates=self.fx,
        )

    @cached_property
    def plaid_items(self) -> PlaidItemRemoval:
        return PlaidItemRemoval(self.access, self.connections, self.positions)

    @cached_property
    def health(self) -> HealthService:
        return build_health(
            self.settings,
            access=self.access,
            connections=self.connections,
            clock=self.clock,
            snaptrade_client_id=self.snaptrade_client_id,
        )

    @cached_property
    def costs(self) -> CostService:
        return build_costs(
            self.settings,
            access=self.access,
            connections=self.connections,
            ledger=self.ledger,
            positions=self.positions,
            savings=self.savings,
            failed_key_lookups=lambda: self.webhooks.plaid_keys.failed_lookups(),
        )

    @cached_property
    def migrations(self) -> MigrationService:
        return MigrationService(
            access=self.access,
            connections=self.connections,
            positions=self.positions,
            views=self.position_views,
            plaid_items=self.plaid_items,
            runs=MigrationRuns(self.engine, self.user_email, self.clock),
            plaid_item_monthly_usd=self.settings.plaid_item_monthly_usd,
            background=self._background,
        )

    @cached_property
    def trading(self) -> TradeExecutionService:
        return self.trading_for(self.user_email)

    def trading_for(self, user_email: str) -> TradeExecutionService:
        """Trading for one person: every order goes through their SnapTrade broker adapter."""

        def adapter() -> SnapTradeBrokerAdapter:
            secret = self.secret_store.get(snaptrade_user_secret_name(user_email))
            return SnapTradeBrokerAdapter(self.snaptrade_client(), user_email, secret)

        return TradeExecutionService(
            engine=self.engine,
            user_email=user_email,
            adapter_factory=adapter,
            clock=self.clock,
            policy=TradingPolicy.from_settings(self.settings),
            rates=self.fx,
        )

    @cached_property
    def web_auth(self) -> WebAuth:
        return build_web_auth(
            self.settings,
            engine=self.engine,
            secret_store=self.secret_store,
            user_email=self.user_email,
            clock=self.clock,
        )

    @cached_property
    def _links(self) -> LinkStore:
        return LinkStore(self.engine, self.user_email, self.clock)

    @cached_property
    def plaid_link(self) -> PlaidLinkService:
        return PlaidLinkService(
            access=self.access,
            connections=self.connections,
            positions=self.positions,
            store=self._links,
            clock=self.clock,
            webhook_url=plaid_webhook_url(self.settings),
        )

    @cached_property
    def snaptrade_portal(self) -> SnapTradePortalService:
        return SnapTradePortalService(
            access=self.access,
            positions=self.positions,
            store=self._links,
            single_flight=SingleFlight(self.engine, wait_seconds=30),
            clock=self.clock,
        )

    def close(self) -> None:
        """Release what this process holds: database connections, an emulator it started."""
        if "_embedded" in self.__dict__:
            self._embedded.close()
        if "database" in self.__dict__:
            self.database.dispose()


def build_services(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    emulator: Any = None,
    sleep: Callable[[float], None] | None = None,
    background: Callable[[Callable[[], None]], None] | None = None,
) -> Services:
    """Build the service layer from ``settings`` (default: the environment's).

    ``clock`` and ``sleep`` are injected (tests move time and never sleep);
    ``emulator`` is an already running emulator to use on the embedded default;
    ``background`` runs work that outlives a request (default: a daemon thread).
    """
    services = Services(
        settings or load_settings(),
        clock=clock or system_clock,
        emulator=emulator,
        sleep=sleep or time.sleep,
        background=background or in_a_thread,
    )
    if services._emulated_providers():
        services.seed_demo_user()
    return services
