"""READ_ONLY=true offers only the tools whose readOnlyHint is true, in memory and over stdio;
the server's instructions say whether trading is on and where orders would go."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server import build_server, trading_state
from settings import PROJECT_ROOT
from tests.conftest import make_services, make_settings

TRADING_TOOLS = {"preview_trade", "execute_trade"}


def _listed(server: Any) -> tuple[dict[str, Any], str]:
    import mcp

    async def run() -> tuple[dict[str, Any], str]:
        async with mcp.Client(server) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            return tools, client.instructions or ""

    return anyio.run(run)


@pytest.fixture
def read_only_services(tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any) -> Iterator[Any]:
    built = make_services(tmp_path, sqlite_url, emulator, clock, READ_ONLY="true")
    yield built
    built.close()


def test_read_only_lists_only_read_only_tools(read_only_services: Any) -> None:
    tools, instructions = _listed(build_server(read_only_services))
    assert not TRADING_TOOLS & set(tools)
    assert {"get_positions", "check_connections", "list_trades"} <= set(tools)
    assert all(tool.annotations.read_only_hint is True for tool in tools.values())
    assert "READ_ONLY=true" in instructions


def test_a_hidden_trading_tool_cannot_be_called(read_only_services: Any, emulator: Any) -> None:
    import mcp

    async def run() -> Any:
        async with mcp.Client(build_server(read_only_services)) as client:
            return await client.call_tool(
                "preview_trade",
                {"ticker": "SCHB", "quantity": 1, "side": "BUY", "account_id": "x"},
            )

    result = anyio.run(run)
    assert result.is_error
    assert emulator.controls.calls() == 0


def test_without_read_only_both_trading_tools_are_listed(services: Any) -> None:
    tools, instructions = _listed(build_server(services))
    assert TRADING_TOOLS <= set(tools)
    assert "TRADING_ENABLED=false" in instructions
    assert "SNAPTRADE_ENV=emulator" in instructions
    assert "READ_ONLY=true would hide the trading tools" in instructions


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({}, ["disabled (TRADING_ENABLED=false)", "the emulator", "READ_ONLY=true"]),
        ({"TRADING_ENABLED": "true"}, ["enabled (TRADING_ENABLED=true)", "the emulator"]),
        (
            {
                "TRADING_ENABLED": "true",
                "SNAPTRADE_ENV": "production",
                "SNAPTRADE_CLIENT_ID": "client",
                "SNAPTRADE_CONSUMER_KEY": "key",
                "PLAID_ENV": "disabled",
            },
            ["enabled (TRADING_ENABLED=true)", "a real brokerage", "person confirms"],
        ),
        ({"SNAPTRADE_ENV": "disabled"}, ["SnapTrade is disabled"]),
        ({"TRADING_ENABLED": "true", "READ_ONLY": "true"}, ["Read-only mode (READ_ONLY=true)"]),
    ],
)
def test_the_instructions_say_whether_and_where_orders_go(
    tmp_path: Path, env: dict[str, str], said: list[str]
) -> None:
    settings = make_settings(tmp_path, "sqlite://", **env)
    text = trading_state(settings)
    assert all(part in text for part in said), text
    _, instructions = _listed(build_server(settings=settings))
    assert text in instructions and "untrusted_fields" in instructions


@pytest.mark.slow
@pytest.mark.parametrize("read_only", ["true", "false"])
def test_read_only_over_stdio(tmp_path: Path, read_only: str) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stdio.db'}",
        "LOG_LEVEL": "WARNING",
        "READ_ONLY": read_only,
    }
    params = StdioServerParameters(
        command=sys.executable, args=[str(PROJECT_ROOT / "mcp_server.py")], env=env
    )

    async def run() -> tuple[Any, str]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            initialized = await session.initialize()
            return await session.list_tools(), initialized.instructions or ""

    listed, instructions = anyio.run(run)
    tools = {tool.name: tool for tool in listed.tools}
    if read_only == "true":
        assert not TRADING_TOOLS & set(tools) and "get_positions" in tools
        assert all(tool.annotations.read_only_hint is True for tool in tools.values())
        assert "READ_ONLY=true" in instructions
    else:
        assert TRADING_TOOLS <= set(tools)
        assert "TRADING_ENABLED=" in instructions
