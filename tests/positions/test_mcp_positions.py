"""get_positions over MCP: in memory on SQLite and Postgres, and over a real stdio subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server import build_server
from settings import PROJECT_ROOT
from tests.mcp_fixtures import call_tool, error_text, payload

HOLDINGS = "plaid /investments/holdings/get"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"


@pytest.mark.parametrize("format", ["full", "summary", "by_account", "list", "holdings"])
def test_every_format_answers_with_cache_info(any_db_services: Any, format: str) -> None:
    data = payload(call_tool(any_db_services, "get_positions", {"format": format}))
    assert data["format"] == format
    assert data["position_count"] >= 30
    for provider in ("plaid", "snaptrade"):
        info = data["cache_info"][provider]
        assert info["age_hours"] is None  # just fetched, and no crash on the None
        assert info["from_cache"] is False
        assert info["ttl_hours"] == {"plaid": 72, "snaptrade": 24}[provider]
        assert info["as_of"] and info["next_refresh_after"]
    if format == "full":
        duplicates = sum(1 for p in data["positions"] if p["duplicate"])
        assert len(data["positions"]) == data["position_count"] + duplicates
        assert {"ticker", "quantity", "market_value", "institution"} <= set(data["positions"][0])
        assert "USD" in data["totals"] and "EUR" in data["totals"]
    elif format == "summary":
        summary = data["summary"]
        assert set(summary["by_provider"]) == {"plaid", "snaptrade"}
        assert {"Merrill Lynch", "Interactive Brokers", "Charles Schwab"} <= set(
            summary["by_institution"]
        )
        assert "cash" in summary["by_security_type"]
        assert len(summary["top_holdings"]) == 10
    elif format == "by_account":
        providers = {p["provider"]: p for p in data["providers"]}
        assert set(providers) == {"plaid", "snaptrade"}
        account = providers["plaid"]["institutions"][0]["accounts"][0]
        assert account["positions"] and account["totals"]
    elif format == "holdings":
        held = data["positions"]
        assert held and all(row["accounts"] for row in held)
        assert {"ticker", "quantity", "market_value", "market_value_base"} <= set(held[0])
    else:
        compact = {"ticker", "quantity", "value", "currency", "value_base", "gain"}
        assert all(set(p) - {"duplicate"} == compact for p in data["positions"])


def test_a_second_call_is_served_from_cache(services: Any, emulator: Any) -> None:
    call_tool(services, "get_positions", {"format": "list"})
    calls = emulator.controls.calls()
    data = payload(call_tool(services, "get_positions", {"format": "list"}))
    assert emulator.controls.calls() == calls
    assert data["cache_info"]["plaid"]["from_cache"] is True
    assert data["cache_info"]["plaid"]["age_hours"] == 0.0


def test_refresh_plaid_calls_only_plaid_while_snaptrade_is_fresh(
    services: Any, emulator: Any, clock: Any
) -> None:
    call_tool(services, "get_positions", {"format": "summary"})
    clock.advance(hours=2)
    emulator.controls.reset_counts()
    data = payload(
        call_tool(services, "get_positions", {"format": "summary", "refresh_provider": "plaid"})
    )
    assert emulator.controls.calls(HOLDINGS) == 2
    assert emulator.controls.calls() == 2
    assert data["cache_info"]["plaid"]["age_hours"] == 0.0
    assert data["cache_info"]["snaptrade"]["age_hours"] == 2.0
    assert data["refresh"] == {"provider": "plaid", "ok": True, "error": None}


def test_refresh_plaid_also_fetches_snaptrade_when_its_cache_expired(
    services: Any, emulator: Any, clock: Any
) -> None:
    call_tool(services, "get_positions", {"format": "summary"})
    clock.advance(hours=25)
    emulator.controls.reset_counts()
    data = payload(
        call_tool(services, "get_positions", {"format": "summary", "refresh_provider": "plaid"})
    )
    assert emulator.controls.calls(HOLDINGS) == 2
    assert emulator.controls.calls(SNAP_POSITIONS) == 2
    assert data["cache_info"]["snaptrade"]["from_cache"] is False


def test_ttls_follow_the_cache_hour_settings(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    from tests.conftest import make_services

    services = make_services(
        tmp_path, sqlite_url, emulator, clock, PLAID_CACHE_HOURS="6", SNAPTRADE_CACHE_HOURS="2"
    )
    data = payload(call_tool(services, "get_positions", {"format": "list"}))
    assert data["cache_info"]["plaid"]["ttl_hours"] == 6
    assert data["cache_info"]["snaptrade"]["ttl_hours"] == 2
    clock.advance(hours=3)
    emulator.controls.reset_counts()
    payload(call_tool(services, "get_positions", {"format": "list"}))
    assert emulator.controls.calls(HOLDINGS) == 0
    assert emulator.controls.calls(SNAP_POSITIONS) == 2


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"format": "table"}, "full"),
        ({"refresh_provider": "robinhood"}, "plaid"),
        ({"format": 3}, "summary"),
    ],
)
def test_bad_arguments_are_a_tool_error_naming_the_allowed_values(
    services: Any, emulator: Any, arguments: dict[str, Any], expected: str
) -> None:
    result = call_tool(services, "get_positions", arguments)
    assert expected in error_text(result)
    assert emulator.controls.calls() == 0


def test_a_provider_error_reaches_the_model_as_a_clear_message(
    services: Any, emulator: Any, clock: Any
) -> None:
    call_tool(services, "get_positions", {"format": "list"})
    clock.advance(minutes=5)  # past the refresh cooldown
    emulator.controls.fail(HOLDINGS, "ITEM_LOGIN_REQUIRED")
    data = payload(
        call_tool(services, "get_positions", {"format": "list", "refresh_provider": "plaid"})
    )
    assert data["refresh"]["ok"] is False
    assert "log in again" in data["refresh"]["error"]


def test_the_tool_is_listed_with_refresh_provider_and_read_only_hints(services: Any) -> None:
    import mcp

    async def run() -> Any:
        async with mcp.Client(build_server(services)) as client:
            return await client.list_tools()

    tools = {t.name: t for t in anyio.run(run).tools}
    tool = tools["get_positions"]
    assert "refresh_provider" in tool.input_schema["properties"]
    assert tool.input_schema["properties"]["format"]["enum"] == [
        "full",
        "summary",
        "by_account",
        "list",
        "holdings",
    ]
    assert tool.annotations.read_only_hint is True
    assert tool.annotations.idempotent_hint is True
    assert "costs provider API calls" in tool.description


@pytest.mark.slow
def test_get_positions_end_to_end_over_stdio(tmp_path: Path, emulator: Any) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stdio.db'}",
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
    }
    params = StdioServerParameters(
        command=sys.executable, args=[str(PROJECT_ROOT / "mcp_server.py")], env=env
    )

    async def run() -> tuple[Any, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("get_positions", {"format": "summary"})
            held = await session.call_tool("get_positions", {"format": "holdings", "limit": 5})
            return tools, result, held

    tools, result, held = anyio.run(run)
    assert "get_positions" in {t.name for t in tools.tools}
    data = payload(result)
    assert data["position_count"] >= 30
    assert emulator.controls.calls(HOLDINGS) == 2
    # In the base currency, with the rate used and its source; gains beside.
    assert data["fx"]["base_currency"] == "USD" and data["base_total"] > 0
    [eur] = data["fx"]["rates"]
    assert eur["pair"] == "EUR/USD" and "ECB" in eur["source"]
    assert data["summary"]["gains"]["unrealized_gain"] is not None
    holdings = payload(held)
    assert len(holdings["positions"]) == 5 and holdings["truncated"] is True
    assert all("unrealized_gain" in h for h in holdings["positions"])
