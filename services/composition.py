"""The composition root: the one place that builds the engine, clients, store and services.

Entry points call :func:`build_services` once and pass the result around.
Nothing here connects at import time, and the SDK clients and the emulator are
created on first use, so the MCP server answers its handshake before any of
them exist.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from services import provider_calls
from settings import PROVIDER_CACHE_HOURS, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.auth import WebAuth
    from services.call_ledger import SqlCallLedger
    from services.connections import ConnectionRegistry
    from services.cost_service import CostService
    from services.health_service import HealthService
    from services.linking import LinkingService
    from services.migration_service import MigrationService
    from services.position_service import PositionService
    from services.secret_store import SecretStore
    from services.trade_execution_service import TradeExecutionService

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    clock: Clock = system_clock
    emulator: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _plaid_client: Any = field(default=None, repr=False)
    _snaptrade_client: Any = field(default=None, repr=False)

    # --- storage ---------------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        from services.db import make_engine, upgrade_schema

        engine = make_engine(self.settings.database_url)
        if self.settings.plaid_env == "emulator" and self.settings.snaptrade_env == "emulator":
            # The embedded default must work in one command: migrate on first start.
            upgrade_schema(engine)
        return engine

    @cached_property
    def secret_store(self) -> SecretStore:
        from services.secret_store import build_secret_store

        store = build_secret_store(
            self.settings.secrets_backend,
            instance_dir=self.settings.instance_dir,
            region_name=self.settings.aws_region,
        )
        # Seeding reads this property: publish the store before seeding it.
        self.__dict__["secret_store"] = store
        self.ensure_demo_user()
        return store

    @cached_property
    def ledger(self) -> SqlCallLedger:
        from services.call_ledger import SqlCallLedger

        return SqlCallLedger(self.engine, self.clock)

    @cached_property
    def connections(self) -> ConnectionRegistry:
        from services.connections import ConnectionRegistry

        return ConnectionRegistry(self.engine, self.clock)

    # --- provider clients (created on first use) -------------------------------------

    def _emulator_handle(self) -> Any:
        with self._lock:
            if self.emulator is None:
                from sandbox.server import ensure_emulator

                self.emulator = ensure_emulator(self.settings.instance_dir)
            return self.emulator

    def plaid_client(self) -> Any:
        if self._plaid_client is None:
            from plaid_loader import make_plaid_client, plaid_host

            settings = self.settings
            emulator_url = None
            client_id, secret = settings.plaid_client_id, settings.plaid_secret
            if settings.plaid_env == "emulator":
                from sandbox import demo

                if not settings.plaid_base_url:
                    emulator_url = self._emulator_handle().plaid_url
                client_id = client_id or demo.PLAID_CLIENT_ID
                secret = secret or demo.PLAID_SECRET
            self._plaid_client = make_plaid_client(
                plaid_host(settings, emulator_url),
                client_id,
                secret,
                timeout_seconds=settings.provider_timeout_seconds,
                sink=self.ledger,
            )
        return self._plaid_client

    def snaptrade_client(self) -> Any:
        if self._snaptrade_client is None:
            from settings import SNAPTRADE_HOSTS
            from snaptrade_loader import make_snaptrade_client

            settings = self.settings
            client_id, key = settings.snaptrade_client_id, settings.snaptrade_consumer_key
            host = settings.snaptrade_base_url
            if settings.snaptrade_env == "emulator":
                from sandbox import demo

                host = host or self._emulator_handle().snaptrade_url
                client_id = client_id or demo.SNAPTRADE_CLIENT_ID
                key = key or demo.SNAPTRADE_CONSUMER_KEY
            self._snaptrade_client = make_snaptrade_client(
                host or SNAPTRADE_HOSTS[settings.snaptrade_env],
                client_id,
                key,
                timeout_seconds=settings.provider_timeout_seconds,
                sink=self.ledger,
            )
        return self._snaptrade_client

    # --- services --------------------------------------------------------------------

    @property
    def user_email(self) -> str:
        return self.settings.default_user_email

    @cached_property
    def positions(self) -> PositionService:
        from services.position_fetchers import PlaidPositionsFetcher, SnapTradePositionsFetcher
        from services.position_service import PositionService

        self.ensure_demo_user()
        return PositionService(
            engine=self.engine,
            user_email=self.user_email,
            fetchers={
                "plaid": PlaidPositionsFetcher(self),
                "snaptrade": SnapTradePositionsFetcher(self),
            },
            clock=self.clock,
            provider_priority=self.settings.provider_priority,
        )

    @cached_property
    def migrations(self) -> MigrationService:
        from services.migration_service import MigrationService

        return MigrationService(self)

    @cached_property
    def costs(self) -> CostService:
        from services.cost_service import CostService

        return CostService(self)

    @cached_property
    def health(self) -> HealthService:
        from services.health_service import HealthService

        return HealthService(self)

    @cached_property
    def trading(self) -> TradeExecutionService:
        return self.trading_for(self.user_email)

    def trading_for(self, user_email: str) -> TradeExecutionService:
        """Trading for one person: every order goes through their SnapTrade adapter."""
        from services.secret_store import snaptrade_user_secret_name
        from services.trade_execution_service import TradeExecutionService
        from snaptrade_broker_adapter import SnapTradeBrokerAdapter

        self.ensure_demo_user()

        def adapter() -> SnapTradeBrokerAdapter:
            secret = self.secret_store.get(snaptrade_user_secret_name(user_email))
            return SnapTradeBrokerAdapter(self.snaptrade_client(), user_email, secret)

        return TradeExecutionService(
            engine=self.engine,
            user_email=user_email,
            adapter_factory=adapter,
            clock=self.clock,
            trading_enabled=self.settings.trading_enabled,
            max_order_value=self.settings.max_order_value,
            preview_ttl_seconds=self.settings.preview_ttl_seconds,
        )

    def ensure_demo_user(self) -> None:
        """In emulator mode, give the demo user the emulator's tokens, once per secret store.

        A marker secret records that seeding happened, so a token deleted later
        (say by a migration) is never silently put back.
        """
        from sandbox import demo
        from services.users import ensure_user

        ensure_user(self.engine, self.user_email, self.clock)
        if self.user_email != demo.DEMO_USER_EMAIL:
            return
        from services.errors import SecretStoreError
        from services.secret_store import plaid_token_name, snaptrade_user_secret_name

        marker = f"app/demo_seeded/{self.user_email}"
        if self.secret_store.exists(marker):
            return

        seeds: dict[str, str] = {}
        if self.settings.plaid_env == "emulator":
            for slug, token in demo.PLAID_ACCESS_TOKENS.items():
                seeds[plaid_token_name(self.user_email, slug)] = token
        if self.settings.snaptrade_env == "emulator":
            seeds[snaptrade_user_secret_name(self.user_email)] = demo.SNAPTRADE_USER_SECRET
        for name, value in seeds.items():
            try:
                if not self.secret_store.exists(name):
                    self.secret_store.put(name, value)
            except SecretStoreError as exc:
                log.info("demo secret %s left as it is: %s", name, exc.message)
        self.secret_store.put(marker, self.clock().isoformat())

    # --- web app -------------------------------------------------------------------

    @property
    def emulator_mode(self) -> bool:
        """Both providers are the local emulator: no real account can be reached."""
        return self.settings.plaid_env == "emulator" and self.settings.snaptrade_env == "emulator"

    @cached_property
    def web_auth(self) -> WebAuth:
        from services.auth import LoginRateLimiter, PasswordStore, WebAuth

        return WebAuth(
            PasswordStore(self.secret_store, self.user_email), LoginRateLimiter(self.clock)
        )

    @cached_property
    def linking(self) -> LinkingService:
        from services.linking import LinkingService

        return LinkingService(self)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def configure_process(settings: Settings, *, sleep: Callable[[float], None] | None = None) -> None:
    """Process-wide knobs that follow the settings: cache lifetimes, retry policy."""
    PROVIDER_CACHE_HOURS.update(settings.provider_cache_hours)
    provider_calls.RETRY_POLICY.attempts = settings.provider_retry_attempts
    if sleep is not None:
        provider_calls.RETRY_POLICY.sleep = sleep


def build_services(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    emulator: Any = None,
) -> Services:
    settings = settings or load_settings()
    configure_process(settings)
    return Services(settings=settings, clock=clock or system_clock, emulator=emulator)


def default_secret_store(region_name: str | None = None) -> SecretStore:
    """The configured secret store, for REPL helpers called without one."""
    from services.secret_store import build_secret_store

    settings = load_settings()
    return build_secret_store(
        settings.secrets_backend,
        instance_dir=settings.instance_dir,
        region_name=region_name or settings.aws_region,
    )
