"""Plain-text CLI answers say what they ran against: the provider environments, or the
database and secret store kinds (never a URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli.environments import database_kind
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import TEST_PASSWORD, make_app

EMULATED = "environments: plaid=emulator, snaptrade=emulator"


def run(services: Any, *args: str, **kwargs: Any) -> list[str]:
    result = make_app(services).test_cli_runner().invoke(args=list(args), **kwargs)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_the_support_request_names_the_environments_above_the_request(services: Any) -> None:
    lines = run(services, "snaptrade-support-request")
    assert lines[0] == EMULATED
    assert any(line.startswith("Subject: ") for line in lines[1:])


def test_demo_login_names_the_environments_and_ends_with_the_login(services: Any) -> None:
    lines = run(services, "demo-login")
    assert lines[0] == EMULATED
    assert lines[-1].startswith("demo login (emulator mode): ")


def test_demo_login_outside_emulator_mode_names_the_environments(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    hub = make_services(
        tmp_path,
        sqlite_url,
        emulator,
        clock,
        PLAID_ENV="sandbox",
        PLAID_CLIENT_ID="cid",
        PLAID_SECRET="secret-value",
    )
    try:
        assert run(hub, "demo-login") == ["environments: plaid=sandbox, snaptrade=emulator"]
    finally:
        hub.close()


def test_set_password_and_clear_login_brake_name_the_storage(services: Any) -> None:
    env = {"BROKERAGE_HUB_NEW_PASSWORD": TEST_PASSWORD}
    assert run(services, "set-password", env=env)[-1] == "database: sqlite; secret store: local"
    assert run(services, "clear-login-brake")[-1] == "database: sqlite"


def test_the_database_kind_never_carries_the_url() -> None:
    url = "postgresql+psycopg://owner:hunter2@db.internal:5432/hub"
    assert database_kind(url) == "postgresql"
