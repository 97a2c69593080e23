"""The web app and CLI show what the MCP tool shows, with the refresh window from the settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import create_app


@pytest.fixture
def client(services: Any) -> Any:
    from tests.web_fixtures import logged_in_client

    return logged_in_client(services)


def test_api_positions_returns_the_tool_json(client: Any, emulator: Any) -> None:
    response = client.get("/api/positions?format=summary")
    assert response.status_code == 200
    body = response.get_json()
    assert body["format"] == "summary"
    assert body["cache_info"]["plaid"]["ttl_hours"] == 72
    assert body["position_count"] >= 30


def test_api_positions_rejects_a_bad_format_with_the_json_error_shape(
    client: Any, emulator: Any
) -> None:
    response = client.get("/api/positions?format=table")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_input"
    assert "full, summary, by_account, list" in error["message"]
    assert emulator.controls.calls() == 0


def test_api_positions_rejects_an_unknown_refresh_provider(client: Any, emulator: Any) -> None:
    response = client.get("/api/positions?refresh_provider=robinhood")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "refresh_provider"
    assert emulator.controls.calls() == 0


def test_positions_page_lists_institutions_and_the_refresh_windows(client: Any) -> None:
    html = client.get("/").get_data(as_text=True)
    for institution in ("Merrill Lynch", "Interactive Brokers", "Charles Schwab"):
        assert institution in html
    assert "Plaid data refreshes after 72h" in html
    assert "SnapTrade data refreshes after 24h" in html


def test_refresh_window_text_follows_the_settings(
    tmp_path: Any, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    from tests.conftest import make_services
    from tests.web_fixtures import logged_in_client

    services = make_services(tmp_path, sqlite_url, emulator, clock, PLAID_CACHE_HOURS="96")
    client = logged_in_client(services)
    assert "Plaid data refreshes after 96h" in client.get("/").get_data(as_text=True)
    assert "Plaid data refreshes after 96h" in client.get("/plaid/").get_data(as_text=True)
    assert "SnapTrade data refreshes after 24h" in client.get("/snaptrade/").get_data(as_text=True)


def test_unknown_api_route_uses_the_json_error_shape(client: Any) -> None:
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "not_found"


def test_cli_positions_prints_the_same_json(services: Any) -> None:
    app = create_app({"TESTING": True}, services=services)
    result = app.test_cli_runner().invoke(args=["positions", "--format", "list"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["format"] == "list" and body["position_count"] >= 30


def test_cli_positions_reports_bad_input_without_a_traceback(services: Any) -> None:
    app = create_app({"TESTING": True}, services=services)
    result = app.test_cli_runner().invoke(args=["positions", "--format", "table"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "allowed values are full" in result.output


def test_a_bad_setting_stops_the_app_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from settings import PROJECT_ROOT

    env = {"PLAID_CACHE_HOURS": "-5", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import app; app.create_app()"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "brokerage-hub: PLAID_CACHE_HOURS='-5' is not valid: a whole number of hours, 0 or more"
    ]
