"""Settings: defaults, one-line errors for bad values, and documentation of every name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.errors import ConfigError
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


def test_provider_cache_hours_is_importable_and_follows_build_services(tmp_path: Path) -> None:
    from services.composition import build_services
    from settings import PROVIDER_CACHE_HOURS

    build_services(load(PLAID_CACHE_HOURS="12", INSTANCE_DIR=str(tmp_path)))
    assert PROVIDER_CACHE_HOURS == {"plaid": 12, "snaptrade": 24}


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
        ({"PLAID_ENV": "production"}, "PLAID_CLIENT_ID is empty: it is required when PLAID_ENV"),
        (
            {"PLAID_ENV": "sandbox", "PLAID_CLIENT_ID": "cid"},
            "PLAID_SECRET is empty: it is required when PLAID_ENV=sandbox",
        ),
        (
            {"SNAPTRADE_ENV": "production"},
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


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table_names = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert table_names == set(SETTING_NAMES)


def test_env_example_lists_every_setting() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert names == set(SETTING_NAMES)
