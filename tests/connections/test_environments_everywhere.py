"""Every MCP tool result, CLI answer and page says which environment each provider is in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from app import create_app
from mcp_server import build_server
from sandbox import data
from tests.conftest import make_services
from tests.mcp_fixtures import payload
from tests.web_fixtures import logged_in_client, make_app

EMBEDDED = {"plaid": "emulator", "snaptrade": "emulator"}
SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]

# One call per tool, with arguments it answers (not an error) on the demo data.
TOOL_CALLS: dict[str, dict[str, Any]] = {
    "get_positions": {"format": "summary"},
    "check_connections": {},
    "preview_trade": {"ticker": "SCHB", "quantity": 1, "side": "BUY", "account_id": SCHWAB},
    "execute_trade": {},  # the preview's id; the person declines: nothing is placed
    "list_trades": {},
    "plan_institution_migration": {"institution": "interactive-brokers"},
    "get_provider_costs": {},
    "get_activities": {"limit": 3},
    "get_income": {"period": "last_year"},
}


async def decline(context: Any, params: Any) -> Any:
    from mcp.types import ElicitResult

    return ElicitResult(action="decline")


def test_every_mcp_tool_result_says_each_providers_environment(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    import mcp

    hub = make_services(tmp_path, sqlite_url, emulator, clock, TRADING_ENABLED="true")

    async def run() -> dict[str, Any]:
        async with mcp.Client(build_server(hub), elicitation_callback=decline) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == set(TOOL_CALLS), "add the new tool to TOOL_CALLS"
            results: dict[str, Any] = {}
            for name, arguments in TOOL_CALLS.items():
                if name == "execute_trade":
                    preview = payload(results["preview_trade"])
                    arguments = {"preview_id": preview["preview_id"]}
                results[name] = await client.call_tool(name, arguments)
            return results

    try:
        results = anyio.run(run)
    finally:
        hub.close()
    assert payload(results["execute_trade"])["status"] == "not_placed"
    for name, result in results.items():
        assert payload(result)["environments"] == EMBEDDED, name


def test_a_warm_get_positions_answer_says_it_too_and_the_kept_view_is_not_changed(
    services: Any,
) -> None:
    import mcp

    async def twice() -> list[Any]:
        async with mcp.Client(build_server(services)) as client:
            return [await client.call_tool("get_positions", {"format": "list"}) for _ in "12"]

    cold, warm = (payload(r) for r in anyio.run(twice))
    assert cold["environments"] == warm["environments"] == EMBEDDED
    kept = services.position_views.answer_if_warm("list")
    assert kept is not None and "environments" not in kept


@pytest.mark.parametrize(
    "command", [["positions"], ["positions", "--format", "list"], ["costs"], ["health"]]
)
def test_every_cli_json_answer_says_each_providers_environment(
    services: Any, command: list[str]
) -> None:
    result = create_app({"TESTING": True}, services=services).test_cli_runner().invoke(args=command)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["environments"] == EMBEDDED


PAGES = ["/", "/connections", "/plaid/", "/snaptrade/", "/trades", "/costs"]


def test_every_page_says_each_providers_environment_and_that_the_emulator_is_not_real(
    services: Any,
) -> None:
    client = logged_in_client(services)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        assert 'class="environments not-real"' in page, path
        assert "Plaid: <strong>emulator</strong>" in page, path
        assert "SnapTrade: <strong>emulator</strong>" in page, path
        assert "not real money" in page, path
    login = make_app(services).test_client().get("/login").get_data(as_text=True)
    assert "Plaid: <strong>emulator</strong>" in login


def test_the_json_positions_route_says_each_providers_environment(services: Any) -> None:
    body = logged_in_client(services).get("/api/positions?format=summary").get_json()
    assert body["environments"] == EMBEDDED


def test_a_real_environment_is_named_without_the_not_real_money_warning(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    hub = make_services(
        tmp_path,
        sqlite_url,
        emulator,
        clock,
        PLAID_ENV="sandbox",
        PLAID_CLIENT_ID="client",
        PLAID_SECRET="secret-value",
        PLAID_BASE_URL=emulator.plaid_url,
        SNAPTRADE_ENV="disabled",
        PUBLIC_BASE_URL="http://127.0.0.1:5000",
    )
    try:
        page = logged_in_client(hub).get("/trades").get_data(as_text=True)
        assert "Plaid: <strong>sandbox</strong>" in page
        assert "SnapTrade: <strong>disabled</strong>" in page
        assert "not real money" not in page and "not-real" not in page
        runner = create_app({"TESTING": True}, services=hub).test_cli_runner()
        answer = json.loads(runner.invoke(args=["costs"]).output)
        assert answer["environments"] == {"plaid": "sandbox", "snaptrade": "disabled"}
    finally:
        hub.close()
