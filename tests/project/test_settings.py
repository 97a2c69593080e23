"""Settings: defaults, one-line errors for bad values, and documentation of every name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ConfigError
from settings import PROJECT_ROOT, SETTING_NAMES, load_settings


def load(**env: str):
    return load_settings(env, use_dotenv=False)


def test_defaults_are_the_embedded_setup() -> None:
    settings = load()
    assert settings.plaid_env == "emulator" and settings.snaptrade_env == "emulator"
    assert settings.secrets_backend == "local"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("instance/brokerage_hub.db")
    assert settings.provider_cache_hours == {"plaid": 72, "snaptrade": 24}


def test_cache_hours_follow_the_environment() -> None:
    settings = load(PLAID_CACHE_HOURS="96", SNAPTRADE_CACHE_HOURS="6")
    assert settings.provider_cache_hours == {"plaid": 96, "snaptrade": 6}


def test_provider_cache_hours_reports_what_a_built_service_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import settings
    from services.composition import build_services
    from services.positions.service import PositionService

    monkeypatch.setenv("PLAID_CACHE_HOURS", "12")
    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    hub = build_services()
    try:
        assert settings.PROVIDER_CACHE_HOURS == {"plaid": 12, "snaptrade": 24}
        for provider, hours in settings.PROVIDER_CACHE_HOURS.items():
            assert hub.positions.cache_hours_for_provider(provider) == hours
            assert PositionService.cache_hours_for_provider(provider) == hours
    finally:
        hub.close()


def test_provider_cache_hours_is_read_when_asked_not_at_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import settings

    monkeypatch.setenv("SNAPTRADE_CACHE_HOURS", "3")
    assert settings.PROVIDER_CACHE_HOURS["snaptrade"] == 3
    monkeypatch.setenv("SNAPTRADE_CACHE_HOURS", "5")
    assert settings.PROVIDER_CACHE_HOURS["snaptrade"] == 5


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PLAID_CACHE_HOURS": "-1"}, "PLAID_CACHE_HOURS='-1' is not valid: a whole number"),
        ({"SNAPTRADE_CACHE_HOURS": "soon"}, "SNAPTRADE_CACHE_HOURS='soon' is not valid"),
        ({"PLAID_ENV": "staging"}, "PLAID_ENV='staging' is not valid: allowed values are emulator"),
        ({"SNAPTRADE_ENV": "sandbox"}, "SNAPTRADE_ENV='sandbox' is not valid: allowed values"),
        ({"SECRETS_BACKEND": "vault"}, "SECRETS_BACKEND='vault' is not valid: allowed values"),
        ({"PLAID_BASE_URL": "localhost:8000"}, "PLAID_BASE_URL='localhost:8000' is not valid"),
        ({"SNAPTRADE_BASE_URL": "ftp://x.y"}, "SNAPTRADE_BASE_URL='ftp://x.y' is not valid"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL='mysql://x/y' is not valid"),
        (
            {"PLAID_ENV": "production", "SNAPTRADE_ENV": "disabled"},
            "PLAID_CLIENT_ID is empty: it is required when PLAID_ENV",
        ),
        (
            {"PLAID_ENV": "production", "PLAID_CLIENT_ID": "c", "PLAID_SECRET": "s"},
            "PLAID_ENV=production beside SNAPTRADE_ENV=emulator would show the emulator's",
        ),
        ({"PUBLIC_BASE_URL": "https://hub.example.com/app"}, "PUBLIC_BASE_URL="),
        ({"PUBLIC_BASE_URL": "hub.example.com"}, "PUBLIC_BASE_URL='hub.example.com' is not"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES='-1' is not valid: a whole number from 0"),
        ({"SESSION_IDLE_MINUTES": "0"}, "SESSION_IDLE_MINUTES='0' is not valid"),
        ({"ALLOW_MIXED_ENVIRONMENTS": "perhaps"}, "ALLOW_MIXED_ENVIRONMENTS='perhaps'"),
        (
            {"PLAID_ENV": "sandbox", "PLAID_CLIENT_ID": "cid"},
            "PLAID_SECRET is empty: it is required when PLAID_ENV=sandbox",
        ),
        (
            {"SNAPTRADE_ENV": "production", "PLAID_ENV": "disabled"},
            "SNAPTRADE_CLIENT_ID is empty: it is required when SNAPTRADE_ENV=production",
        ),
        ({"PROVIDER_TIMEOUT_SECONDS": "0"}, "PROVIDER_TIMEOUT_SECONDS='0' is not valid"),
        ({"DEFAULT_USER_EMAIL": "nobody"}, "DEFAULT_USER_EMAIL='nobody' is not valid"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not valid"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_it(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**env)
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = load(PLAID_SECRET="plaid-secret-value-123", SNAPTRADE_CONSUMER_KEY="ck-value-456")
    assert "plaid-secret-value-123" not in repr(settings)
    assert "ck-value-456" not in repr(settings)


def test_the_settings_page_lists_every_setting() -> None:
    page = (PROJECT_ROOT / "docs" / "settings.md").read_text()
    table_names = set(re.findall(r"^\| `([A-Z_]+)` \|", page, flags=re.MULTILINE))
    assert table_names == set(SETTING_NAMES)


def test_env_example_lists_every_setting() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert names == set(SETTING_NAMES)


def test_a_real_provider_beside_the_emulator_runs_only_when_explicitly_allowed() -> None:
    mixed = {
        "SNAPTRADE_ENV": "production",
        "SNAPTRADE_CLIENT_ID": "client",
        "SNAPTRADE_CONSUMER_KEY": "key",
    }
    with pytest.raises(ConfigError, match="ALLOW_MIXED_ENVIRONMENTS=true"):
        load(**mixed)
    allowed = load(**mixed, ALLOW_MIXED_ENVIRONMENTS="true")
    assert allowed.provider_envs == {"plaid": "emulator", "snaptrade": "production"}


def test_a_disabled_provider_needs_no_credentials() -> None:
    settings = load(PLAID_ENV="disabled", SNAPTRADE_ENV="disabled")
    assert settings.provider_envs == {"plaid": "disabled", "snaptrade": "disabled"}
    assert settings.public_base_url == ""  # outside the embedded default it must be set


def test_the_embedded_default_serves_where_make_run_listens() -> None:
    assert load().public_base_url == "http://127.0.0.1:5000"
    assert load(PUBLIC_BASE_URL="https://hub.example.com/").public_base_url == (
        "https://hub.example.com"
    )


SNAPTRADE_LIVE = {"SNAPTRADE_CLIENT_ID": "client", "SNAPTRADE_CONSUMER_KEY": "key"}
PLAID_LIVE = {"PLAID_CLIENT_ID": "client", "PLAID_SECRET": "secret"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # SNAPTRADE_ENV says emulator, but the orders would go to the real SnapTrade.
        ({"SNAPTRADE_BASE_URL": "https://api.snaptrade.com"}, "SNAPTRADE_BASE_URL=https://api"),
        (
            {"PLAID_ENV": "production", **PLAID_LIVE, "ALLOW_MIXED_ENVIRONMENTS": "true"},
            "PLAID_ENV=production",
        ),
        ({"PLAID_ENV": "sandbox", **PLAID_LIVE}, "PLAID_ENV=sandbox"),
        ({"PLAID_ENV": "disabled"}, "PLAID_ENV=disabled"),
        ({"PLAID_BASE_URL": "https://sandbox.plaid.com"}, "PLAID_BASE_URL=https://sandbox"),
        ({"SNAPTRADE_BASE_URL": "http://127.0.0.1.evil.example:8765"}, "SNAPTRADE_BASE_URL="),
        (
            {"SNAPTRADE_ENV": "production", "PLAID_ENV": "disabled", **SNAPTRADE_LIVE},
            "PLAID_ENV=disabled",
        ),
    ],
)
def test_skipping_the_confirmation_is_refused_outside_pure_emulator_mode(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(SKIP_ORDER_CONFIRMATION="true", **env)
    message = caught.value.message
    assert message.startswith("SKIP_ORDER_CONFIRMATION=true is refused with ")
    assert named in message and "person's confirmation" in message
    assert "\n" not in message
    assert not load(**env).skip_order_confirmation  # the same setup starts without it


@pytest.mark.parametrize(
    "env",
    [
        {},
        {
            "PLAID_BASE_URL": "http://127.0.0.1:8765/plaid",
            "SNAPTRADE_BASE_URL": "http://localhost:8765/snaptrade",
        },
        {"SNAPTRADE_BASE_URL": "http://[::1]:8765/snaptrade"},
    ],
    ids=["embedded", "loopback", "ipv6-loopback"],
)
def test_skipping_the_confirmation_is_allowed_in_pure_emulator_mode(env: dict[str, str]) -> None:
    assert load(SKIP_ORDER_CONFIRMATION="true", **env).skip_order_confirmation
