"""Trading over MCP: previews, confirmation by elicitation before placing, and the audit.

In memory with ``mcp.Client`` (both the 2026-07-28 protocol, where elicitation
rides the tool call, and the older one, where the server asks mid-call), plus a
preview through a real stdio subprocess.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.errors import Conflict
from mcp_server import build_server
from sandbox import data
from settings import PROJECT_ROOT
from tests.conftest import make_services
from tests.mcp_fixtures import Person, call, error_text, payload, stdio_server

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IBKR = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]
IMPACT = "snaptrade /trade/impact"
PLACE = "snaptrade /trade/{tradeId}"
MESSAGE_1020 = (
    "SnapTrade trading permissions not enabled for Interactive Brokers. Error code 1020 — "
    "contact SnapTrade support to enable app-level trading."
)
PROTOCOLS = ["auto", "legacy"]  # auto negotiates 2026-07-28 in memory
# The previews buy SCHB at market: expected prices are read from the seeded data.
SCHB = next(h for h in data.SCHWAB_INDIVIDUAL.holdings if h.ticker == "SCHB")


@pytest.fixture
def trading_services(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Any:
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


def preview(services: Any, **overrides: Any) -> dict[str, Any]:
    arguments = {"ticker": "SCHB", "quantity": 2, "side": "BUY", "account_id": SCHWAB}
    (result,) = call(services, ("preview_trade", {**arguments, **overrides}))
    return payload(result)


def test_tools_are_listed_with_their_hints(services: Any) -> None:
    import mcp

    async def run() -> Any:
        async with mcp.Client(build_server(services)) as client:
            return await client.list_tools()

    tools = {t.name: t for t in anyio.run(run).tools}
    assert tools["preview_trade"].annotations.destructive_hint is False
    assert tools["preview_trade"].annotations.read_only_hint is False
    execute = tools["execute_trade"]
    assert execute.annotations.destructive_hint is True
    assert execute.annotations.idempotent_hint is True
    assert set(execute.input_schema["properties"]) == {"preview_id"}
    assert tools["list_trades"].annotations.read_only_hint is True
    assert tools["preview_trade"].input_schema["properties"]["side"]["enum"] == ["BUY", "SELL"]
    assert "execute_trade" in tools["preview_trade"].description


def test_preview_trade_for_schwab_returns_the_preview(services: Any, emulator: Any) -> None:
    data_ = preview(services)
    assert data_["preview_id"] and data_["expires_in_seconds"] == 120
    assert data_["order"]["symbol"] == "SCHB" and data_["order"]["side"] == "BUY"
    assert data_["impact"]["estimated_value"] == round(2 * SCHB.price * 1.05, 2)
    assert emulator.controls.calls(IMPACT) == 1
    assert emulator.controls.calls(PLACE) == 0


def test_preview_trade_for_ibkr_returns_the_1020_message(services: Any, emulator: Any) -> None:
    (result,) = call(
        services,
        (
            "preview_trade",
            {
                "ticker": "SPY",
                "quantity": 1,
                "side": "BUY",
                "account_id": IBKR,
                "order_type": "Limit",
                "limit_price": 500,
            },
        ),
    )
    assert MESSAGE_1020 in error_text(result)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"side": "HOLD"}, "BUY"),
        ({"order_type": "Stop"}, "Market"),
        ({"quantity": 0}, "quantity must be a positive"),
        ({"quantity": -1}, "quantity must be a positive"),
        ({"quantity": 1e9}, "MAX_ORDER_QUANTITY"),
        ({"quantity": 1000}, "MAX_ORDER_VALUE"),
        ({"quantity": 1e-300}, "out of bounds: from 0.0001"),
        ({"quantity": True}, "quantity"),
        ({"quantity": "5"}, "quantity"),
        ({"order_type": "Limit", "limit_price": 1e-12, "quantity": 1e15}, "out of bounds"),
        ({"allow_far_limit": "yes"}, "allow_far_limit"),
        ({"account_id": "a" * 100_000}, "account_id"),
        ({"order_type": "Limit"}, "limit_price"),
        ({"ticker": "ZZZZ"}, "no symbol 'ZZZZ'"),
        ({"account_id": "00000000-0000-4000-8000-000000000000"}, "no SnapTrade account"),
    ],
)
def test_bad_preview_input_is_a_clear_tool_error_without_an_order_impact(
    services: Any, emulator: Any, overrides: dict[str, Any], expected: str
) -> None:
    arguments = {"ticker": "SCHB", "quantity": 2, "side": "BUY", "account_id": SCHWAB}
    (result,) = call(services, ("preview_trade", {**arguments, **overrides}))
    assert expected in error_text(result)
    assert emulator.controls.calls(IMPACT) == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("preview_trade", {"quantity": True}, "quantity must be a number, not true"),
        ("preview_trade", {"quantity": "5"}, 'quantity must be a number, not "5"'),
        # JSON has no infinity: the client sends null.
        ("preview_trade", {"quantity": float("inf")}, "quantity must be a number, not null"),
        ("preview_trade", {"side": "HOLD"}, 'side must be one of "BUY", "SELL", not "HOLD"'),
        ("preview_trade", {"limit_price": [1]}, "limit_price must be a number or null, not [1]"),
        ("preview_trade", {"allow_far_limit": 1}, "allow_far_limit must be true or false, not 1"),
        ("preview_trade", {"ticker": None}, "ticker must be a string, not null"),
        ("list_trades", {"limit": "x" * 5000}, 'limit must be a whole number, not "xxxxx'),
        ("execute_trade", {}, "preview_id is required: a string"),
    ],
)
def test_an_argument_of_the_wrong_type_is_one_short_line_naming_it(
    services: Any, emulator: Any, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    base = {"ticker": "SCHB", "quantity": 2, "side": "BUY", "account_id": SCHWAB}
    (result,) = call(
        services, (tool, {**base, **arguments} if tool == "preview_trade" else arguments)
    )
    text = error_text(result)
    assert text == f"Error executing tool {tool}: {expected}" or (
        expected.endswith("xxxxx") and text.startswith(f"Error executing tool {tool}: {expected}")
    )
    assert "\n" not in text and "pydantic" not in text and len(text) < 160
    assert emulator.controls.calls(IMPACT) == 0


def test_execute_trade_is_refused_while_trading_is_disabled(services: Any, emulator: Any) -> None:
    preview_id = preview(services)["preview_id"]
    person = Person("accept")
    (result,) = call(services, ("execute_trade", {"preview_id": preview_id}), person=person)
    assert "TRADING_ENABLED=true" in error_text(result)
    assert person.asked == []  # nobody is asked to confirm an order that cannot be placed
    assert emulator.controls.calls(PLACE) == 0


@pytest.mark.parametrize("mode", PROTOCOLS)
@pytest.mark.parametrize(
    ("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)]
)
def test_a_declined_confirmation_ends_the_preview_for_good(
    trading_services: Any, emulator: Any, mode: str, action: Any, confirm: bool
) -> None:
    preview_id = preview(trading_services)["preview_id"]
    person = Person(action, confirm)
    declined, again = call(
        trading_services,
        ("execute_trade", {"preview_id": preview_id}),
        ("execute_trade", {"preview_id": preview_id}),
        person=person,
        mode=mode,
    )
    answer = payload(declined)
    assert answer["status"] == "not_placed"
    assert "nothing was placed" in answer["reason"]
    # Asking again is futile: the model cannot wear the person down.
    assert "rejected" in error_text(again)
    assert len(person.asked) == 1
    assert emulator.controls.calls(PLACE) == 0
    assert trading_services.trading.list_trades()[0]["status"] == "rejected"
    with pytest.raises(Conflict, match="rejected"):
        trading_services.trading.execute_order(preview_id)


@pytest.mark.parametrize("mode", PROTOCOLS)
def test_a_confirmed_order_is_placed_once_after_showing_the_exact_order(
    trading_services: Any, emulator: Any, mode: str
) -> None:
    preview_id = preview(trading_services)["preview_id"]
    person = Person("accept")
    first, second = call(
        trading_services,
        ("execute_trade", {"preview_id": preview_id}),
        ("execute_trade", {"preview_id": preview_id}),
        person=person,
        mode=mode,
    )
    placed, repeated = payload(first), payload(second)
    assert placed["status"] == "placed" and placed["already_executed"] is False
    assert repeated["already_executed"] is True
    assert repeated["brokerage_order_id"] == placed["brokerage_order_id"]
    assert emulator.controls.calls(PLACE) == 1
    assert len(person.asked) == 1  # the repeat has nothing left to confirm
    shown = person.asked[0]
    worst_case = round(2 * SCHB.price * 1.05, 2)  # a Market BUY: the price plus the buffer
    for detail in (
        "Charles Schwab",
        SCHWAB,
        "Side: BUY",
        "Quantity: 2",
        "Symbol: SCHB",
        "Order type: Market",
        f"Price: market, last {SCHB.price:,.2f} {SCHB.currency} (counted at up to "
        f"{SCHB.price * 1.05:,.2f} {SCHB.currency})",
        f"Value at worst case: {worst_case:,.2f} {SCHB.currency}",
        # ... and where the worst-case price came from.
        f"Counted as: 2 x the market price {SCHB.price:g} {SCHB.currency} (",
        "plus 5% for a Market BUY",
    ):
        assert detail in shown
    assert trading_services.trading.list_trades()[0]["confirmed_via"] == "mcp-elicitation"


@pytest.mark.parametrize("mode", PROTOCOLS)
def test_a_client_that_cannot_ask_gets_pending_confirmation_and_nothing_is_placed(
    trading_services: Any, emulator: Any, mode: str
) -> None:
    preview_id = preview(trading_services)["preview_id"]
    first, second = call(
        trading_services,
        ("execute_trade", {"preview_id": preview_id}),
        ("execute_trade", {"preview_id": preview_id}),
        mode=mode,
    )
    for result in (first, second):
        pending = payload(result)
        assert pending["status"] == "pending_confirmation"
        assert pending["confirm_at"] == f"http://127.0.0.1:5000/trades/{preview_id}"
        assert pending["expires_in_seconds"] == 120
        assert f"confirm-trade {preview_id}" in pending["message"]
    assert emulator.controls.calls(PLACE) == 0
    assert trading_services.trading.list_trades()[0]["status"] == "previewed"


def test_once_a_person_confirms_elsewhere_execute_trade_returns_the_placed_order(
    trading_services: Any, emulator: Any
) -> None:
    preview_id = preview(trading_services)["preview_id"]
    placed = trading_services.trading.confirm_and_place(preview_id, via="web")
    (result,) = call(trading_services, ("execute_trade", {"preview_id": preview_id}))
    answer = payload(result)
    assert answer["already_executed"] is True
    assert answer["brokerage_order_id"] == placed["brokerage_order_id"]
    assert emulator.controls.calls(PLACE) == 1


def test_an_unknown_preview_is_refused_before_asking_anyone(
    trading_services: Any, emulator: Any
) -> None:
    person = Person("accept")
    (result,) = call(trading_services, ("execute_trade", {"preview_id": "y" * 32}), person=person)
    assert "unknown preview_id" in error_text(result)
    assert person.asked == []
    assert emulator.controls.calls(PLACE) == 0


def test_an_expired_preview_is_refused_over_mcp(
    trading_services: Any, emulator: Any, clock: Any
) -> None:
    preview_id = preview(trading_services)["preview_id"]
    clock.advance(minutes=3)
    person = Person("accept")
    (result,) = call(trading_services, ("execute_trade", {"preview_id": preview_id}), person=person)
    assert "expired" in error_text(result)
    assert person.asked == [] and emulator.controls.calls(PLACE) == 0


def test_list_trades_shows_previews_and_orders(trading_services: Any) -> None:
    preview_id = preview(trading_services)["preview_id"]
    execute, listing = call(
        trading_services,
        ("execute_trade", {"preview_id": preview_id}),
        ("list_trades", {"limit": 5}),
        person=Person("accept"),
    )
    assert payload(execute)["status"] == "placed"
    trades = payload(listing)["trades"]
    assert trades[0]["preview_id"] == preview_id
    assert trades[0]["status"] == "executed" and trades[0]["requested_via"] == "mcp"
    assert trades[0]["execution"]["provider_status"] == "EXECUTED"


@pytest.mark.slow
def test_preview_trade_for_schwab_end_to_end_over_stdio(tmp_path: Path, emulator: Any) -> None:
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
    arguments = {"ticker": "SCHB", "quantity": 3, "side": "BUY", "account_id": SCHWAB}

    async def run() -> tuple[Any, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            return tools, await session.call_tool("preview_trade", arguments)

    tools, result = anyio.run(run)
    assert {"preview_trade", "execute_trade", "list_trades", "check_connections"} <= {
        t.name for t in tools.tools
    }
    answer = payload(result)
    assert answer["order"]["account_id"] == SCHWAB and answer["order"]["quantity"] == 3
    assert answer["impact"]["estimated_value"] == round(3 * SCHB.price * 1.05, 2)
    assert emulator.controls.calls(IMPACT) == 1
    assert emulator.controls.calls(PLACE) == 0


@pytest.mark.slow
def test_over_stdio_a_token_sell_limit_is_refused_and_a_client_that_cannot_ask_places_nothing(
    tmp_path: Path, emulator: Any
) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    server = stdio_server(tmp_path, emulator)
    params = server.model_copy(update={"env": {**(server.env or {}), "TRADING_ENABLED": "true"}})
    token_sell = {
        "ticker": "SCHB",
        "quantity": SCHB.quantity,
        "side": "SELL",
        "account_id": SCHWAB,
        "order_type": "Limit",
        "limit_price": 1.0,
    }
    buy = {"ticker": "SCHB", "quantity": 2, "side": "BUY", "account_id": SCHWAB}

    async def run() -> tuple[Any, Any, Any]:
        # A plain ClientSession declares no elicitation: it cannot ask the person.
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            refused = await session.call_tool("preview_trade", token_sell)
            preview = payload(await session.call_tool("preview_trade", buy))
            executed = await session.call_tool(
                "execute_trade", {"preview_id": preview["preview_id"]}
            )
            return refused, preview, executed

    refused, preview, executed = anyio.run(run)
    worth = SCHB.quantity * SCHB.price
    assert 1.0 * SCHB.quantity < 10_000 < worth  # only the market value is above the cap
    text = error_text(refused)
    assert f"{worth:,.2f} {SCHB.currency}" in text and "market price" in text
    assert "MAX_ORDER_VALUE" in text
    pending = payload(executed)
    assert pending["status"] == "pending_confirmation" and pending["trading_enabled"] is True
    assert pending["confirm_at"].endswith(f"/trades/{preview['preview_id']}")
    assert f"confirm-trade {preview['preview_id']}" in pending["message"]
    assert emulator.controls.calls(IMPACT) == 1  # the buy's; the token sell was refused before
    assert emulator.controls.calls(PLACE) == 0
