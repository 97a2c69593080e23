"""Orders an assistant cannot get wrong alone: worst-case value, far limits, limits over time.

Every test goes through a real MCP client (in memory, or two stdio server processes for
the race) and counts at the emulator what reached SnapTrade. Expected prices and
quantities are read from the seeded data, never copied.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import update

from core.errors import Conflict
from sandbox import data, demo
from services.fx.convert import Converter
from services.fx.quotes import RateSnapshot
from services.models import TradePreview
from services.trading.limits import OrderLimits
from settings import PROJECT_ROOT
from tests.conftest import make_services
from tests.mcp_fixtures import Person, call, error_text, payload

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IMPACT = "snaptrade /trade/impact"
PLACE = "snaptrade /trade/{tradeId}"
ORDERS = "snaptrade /accounts/{accountId}/orders"
SYMBOLS = "snaptrade /accounts/{accountId}/symbols"
SCHWAB_HOLDINGS = {h.ticker: h for h in data.SCHWAB_INDIVIDUAL.holdings}
SCHB = SCHWAB_HOLDINGS["SCHB"]  # an ETF the Schwab (SnapTrade) account holds
SWPPX = SCHWAB_HOLDINGS["SWPPX"]  # a mutual fund held in the same SnapTrade account
DEFAULT_LIMIT = 10_000.0  # MAX_ORDER_VALUE and MAX_DAILY_ORDER_VALUE when unset
NO_DAILY_LIMIT = {"MAX_DAILY_ORDER_VALUE": "1000000"}  # only the units check can refuse
HUGE = "a" * 100_000
Hub = Callable[..., Any]


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Iterator[Hub]:
    """Builds the service layer with TRADING_ENABLED=true and the given limit settings."""
    built: list[Any] = []

    def make(**env: str) -> Any:
        built.append(make_services(tmp_path, database_url, emulator, clock, **env))
        return built[-1]

    yield lambda **env: make(TRADING_ENABLED="true", **env)
    for services in built:
        services.close()


def sell(quantity: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "ticker": "SCHB",
        "quantity": quantity,
        "side": "SELL",
        "account_id": SCHWAB,
        **overrides,
    }


def preview_sell(services: Any, quantity: float, **overrides: Any) -> Any:
    (result,) = call(services, ("preview_trade", sell(quantity, **overrides)))
    return result


def place_sell(services: Any, quantity: float, **overrides: Any) -> dict[str, Any]:
    """Preview a SELL and have the person accept it when execute_trade asks them."""
    preview_id = payload(preview_sell(services, quantity, **overrides))["preview_id"]
    (placed,) = call(
        services, ("execute_trade", {"preview_id": preview_id}), person=Person("accept")
    )
    return payload(placed)


def money(value: float) -> str:
    return f"{value:,.2f}"  # how amounts are written to the person: 12,170.00


# --- 1. a SELL is worth its shares, whatever its limit --------------------------------------


@pytest.mark.parametrize(
    ("holding", "limit"),
    # SWPPX is a mutual fund, held in the Schwab SnapTrade account too (not only at Plaid).
    [(SCHB, 1.00), (SWPPX, 0.01)],
    ids=["SCHB", "SWPPX"],
)
def test_a_sell_at_a_token_limit_is_valued_at_the_market(
    hub: Hub, emulator: Any, holding: data.Holding, limit: float
) -> None:
    services = hub()
    worth = holding.quantity * holding.price
    assert limit * holding.quantity < DEFAULT_LIMIT < worth  # only the market value is above it
    arguments = sell(holding.quantity, ticker=holding.ticker, order_type="Limit", limit_price=limit)
    (result,) = call(services, ("preview_trade", arguments))
    refused = error_text(result)
    assert f"{money(worth)} {holding.currency}" in refused
    assert "MAX_ORDER_VALUE" in refused and "market price" in refused
    assert emulator.controls.calls(IMPACT) == 0  # refused before SnapTrade is asked
    assert emulator.controls.calls(PLACE) == 0


# --- 2. a SELL limit far below the market reaches the person, never past them ---------------


def test_a_far_limit_needs_the_flag_and_the_person_is_warned(hub: Hub, emulator: Any) -> None:
    services = hub()
    far = {"order_type": "Limit", "limit_price": SCHB.price * 0.75}  # 25% below, worth little
    refused = error_text(preview_sell(services, 1, **far))
    assert "FAR_LIMIT_PERCENT" in refused and "allow_far_limit" in refused
    assert emulator.controls.calls(IMPACT) == 0

    preview = payload(preview_sell(services, 1, **far, allow_far_limit=True))
    assert preview["status"] == "previewed"
    execute = ("execute_trade", {"preview_id": preview["preview_id"]})
    (unasked,) = call(services, execute)
    person = Person("decline")
    (declined,) = call(services, execute, person=person)
    # The flag only lets the order reach a person: a client that cannot ask places nothing...
    assert payload(unasked)["status"] == "pending_confirmation"
    # ...and the person is told the discount in words before deciding.
    (shown,) = person.asked
    warning = next(line for line in shown.splitlines() if line.startswith("WARNING"))
    assert warning.startswith("WARNING: the limit is 25% below the market price")
    assert f"{SCHB.price:g}" in warning
    assert payload(declined)["status"] == "not_placed"
    assert emulator.controls.calls(PLACE) == 0


# --- 3. MAX_DAILY_ORDER_VALUE: split orders, rolling 24 hours -------------------------------


def test_split_orders_are_refused_over_the_daily_limit_for_24_hours(
    hub: Hub, emulator: Any, clock: Any
) -> None:
    services = hub()
    half = SCHB.quantity / 2
    each = half * SCHB.price
    assert each < DEFAULT_LIMIT < 2 * each  # each order alone is allowed
    assert place_sell(services, half)["status"] == "placed"

    refused = error_text(preview_sell(services, half))
    assert "MAX_DAILY_ORDER_VALUE" in refused
    assert money(each) in refused  # what was already placed
    assert emulator.controls.calls(PLACE) == 1

    clock.advance(hours=24, seconds=1)  # the first order leaves the rolling window
    assert place_sell(services, half)["status"] == "placed"
    assert emulator.controls.calls(PLACE) == 2


def test_the_daily_refusal_says_what_is_left(hub: Hub) -> None:
    services = hub()
    quantity = SCHB.quantity / 2
    assert place_sell(services, quantity)["status"] == "placed"
    refused = error_text(preview_sell(services, quantity))
    assert f"{money(DEFAULT_LIMIT - quantity * SCHB.price)} USD is left" in refused


def recorded_as(services: Any, preview_id: str, **values: Any) -> None:
    """Rewrite a placed order's audit row (an order in an account of another currency)."""
    with services.engine.begin() as conn:
        conn.execute(
            update(TradePreview).where(TradePreview.preview_id == preview_id).values(**values)
        )


def test_an_order_in_another_currency_counts_toward_the_same_daily_cap(
    hub: Hub, emulator: Any, clock: Any
) -> None:
    services = hub()
    first = place_sell(services, SCHB.quantity / 4)
    assert first["status"] == "placed"
    in_euros = 3_850.0  # the first order was worth this many euros
    recorded_as(services, first["preview_id"], currency="EUR", estimated_value=in_euros)
    rates = Converter("USD", services.fx.snapshot(clock().date()))
    counted = rates.to_base(in_euros, "EUR")
    assert counted is not None
    second = SCHB.quantity / 2 * SCHB.price
    # Alone, or beside the euros counted 1:1, the second order fits; at the rate it does not.
    assert second + in_euros <= DEFAULT_LIMIT < second + counted

    refused = error_text(preview_sell(services, SCHB.quantity / 2))
    assert "MAX_DAILY_ORDER_VALUE" in refused and "BASE_CURRENCY" in refused
    assert f"already placed or pending: {money(counted)} USD" in refused
    assert emulator.controls.calls(PLACE) == 1


def test_an_order_in_a_currency_without_a_rate_is_refused_never_counted_one_to_one(
    hub: Hub, emulator: Any
) -> None:
    services = hub()
    first = place_sell(services, SCHB.quantity / 4)
    recorded_as(services, first["preview_id"], currency="XTS", estimated_value=1.0)

    refused = error_text(preview_sell(services, 1))
    assert "in XTS, which has no exchange rate to USD (BASE_CURRENCY)" in refused
    assert "MAX_DAILY_ORDER_VALUE" in refused
    assert emulator.controls.calls(PLACE) == 1


def test_the_daily_cap_refuses_this_order_when_its_currency_has_no_rate(hub: Hub) -> None:
    services = hub()
    no_rates = RateSnapshot(on=date(2026, 11, 2), quotes={}, version=0)
    limits = OrderLimits(DEFAULT_LIMIT, "EUR", services.fx)
    order = {
        "preview_id": "",
        "user_id": services.trading._audit.user_id(),
        "side": "BUY",
        "currency": "USD",
        "estimated_value": 1.0,
    }
    now = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
    with services.engine.connect() as conn, pytest.raises(Conflict) as refused:
        limits.check(conn, order, now, Converter("EUR", no_rates))
    assert "this order is in USD, which has no exchange rate to EUR" in refused.value.message
    with services.engine.connect() as conn:  # with the stored rates it is counted
        limits.check(conn, order, now, limits.converter(now))


# --- 4./5. the units a SELL may sell ------------------------------------------------------


@pytest.mark.parametrize(
    "order",
    [
        # Filled at once (the emulator leaves the holdings as they were, as a brokerage
        # does until it books the fill).
        pytest.param({}, id="Market"),
        pytest.param(
            {"order_type": "Limit", "limit_price": SCHB.price},  # at the market: stays open
            id="Limit-open",
        ),
    ],
)
def test_the_same_units_cannot_be_sold_twice(
    hub: Hub, emulator: Any, order: dict[str, Any]
) -> None:
    services = hub(**NO_DAILY_LIMIT)
    part = SCHB.quantity * 0.75
    assert SCHB.quantity < 2 * part and part * SCHB.price < DEFAULT_LIMIT
    assert place_sell(services, part, **order)["status"] == "placed"

    refused = error_text(preview_sell(services, part, **order))
    left = SCHB.quantity - part
    assert f"cannot sell {part:g} SCHB" in refused
    assert f"{left:g} are available" in refused
    assert emulator.controls.calls(PLACE) == 1


@pytest.mark.parametrize(
    ("data_age", "available"),
    [
        # The holdings are dated before our sell: it is not in them, whatever they show.
        pytest.param(timedelta(hours=1), SCHB.quantity * 0.5, id="data-older-than-the-sell"),
        # Dated after it, and showing it sold: the units left are what they show.
        pytest.param(-timedelta(hours=1), SCHB.quantity * 0.75, id="data-newer-than-the-sell"),
    ],
)
def test_our_sell_counts_until_position_data_dated_after_it_shows_it(
    hub: Hub, emulator: Any, clock: Any, data_age: timedelta, available: float
) -> None:
    # The emulator dates its positions by the real clock ("as_of"); ours is set around it.
    clock.now = datetime.now(UTC) + data_age
    services = hub(**NO_DAILY_LIMIT)
    sold = SCHB.quantity / 4
    assert place_sell(services, sold)["status"] == "placed"  # filled at once, not open
    # The holdings now show a quarter fewer units: our sell, or units gone some other way.
    emulator.controls.set_units("schwab-individual", "SCHB", SCHB.quantity - sold)

    quantity = SCHB.quantity * 0.75
    result = preview_sell(services, quantity)
    if available < quantity:
        refused = error_text(result)
        assert f"cannot sell {quantity:g} SCHB: {available:g} are available" in refused
    else:
        assert payload(result)["status"] == "previewed"


def place_as_another_party(services: Any, units: float, limit: float) -> None:
    """A SELL Limit placed at the brokerage directly (not through Brokerage Hub): stays open."""
    client = services.snaptrade_client()
    user = {"user_id": demo.SNAPTRADE_USER_ID, "user_secret": demo.SNAPTRADE_USER_SECRET}
    found = client.reference_data.symbol_search_user_account(
        account_id=SCHWAB, substring="SCHB", **user
    ).body
    symbol_id = next(s["id"] for s in found if s["symbol"] == "SCHB")
    impact = client.trading.get_order_impact(
        account_id=SCHWAB,
        action="SELL",
        universal_symbol_id=symbol_id,
        order_type="Limit",
        time_in_force="GTC",
        price=limit,
        units=units,
        **user,
    ).body
    placed = client.trading.place_order(trade_id=impact["trade"]["id"], **user).body
    assert placed["status"] == "ACCEPTED"  # open: the units are spoken for


def test_open_sell_orders_placed_elsewhere_hold_units_back(hub: Hub, emulator: Any) -> None:
    services = hub(**NO_DAILY_LIMIT)
    elsewhere = SCHB.quantity * 0.6
    place_as_another_party(services, elsewhere, limit=SCHB.price * 1.2)  # above the market
    emulator.controls.reset_counts()
    free = SCHB.quantity - elsewhere

    refused = error_text(preview_sell(services, free + 1))
    assert f"cannot sell {free + 1:g} SCHB" in refused
    assert f"holds {SCHB.quantity:g}, {elsewhere:g} of them in open sell orders" in refused
    assert emulator.controls.calls(IMPACT) == 0

    assert place_sell(services, free)["status"] == "placed"
    assert emulator.controls.calls(PLACE) == 1


# --- 6. two server processes race for the same limit ----------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(
    ("quantity", "env", "refusal"),
    [
        (SCHB.quantity / 2, {}, "MAX_DAILY_ORDER_VALUE"),  # split orders
        # the same units twice: 3/4 of them, then 3/4 again
        (SCHB.quantity * 0.75, NO_DAILY_LIMIT, f"{SCHB.quantity * 0.25:g} are available"),
    ],
    ids=["daily-value", "units"],
)
def test_two_servers_racing_place_one_order(
    tmp_path: Path,
    postgres_url: str,
    emulator: Any,
    quantity: float,
    env: dict[str, str],
    refusal: str,
) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from services.composition import system_clock

    # The servers use the real clock: so do these previews, or they would look expired.
    settings = {"TRADING_ENABLED": "true", **env}
    services = make_services(tmp_path, postgres_url, emulator, system_clock, **settings)
    try:
        ids = [payload(preview_sell(services, quantity))["preview_id"] for _ in range(2)]
        for preview_id in ids:  # each passes alone; a person confirmed both on the web page
            services.trading.confirm(preview_id, via="web")
    finally:
        services.close()
    server_env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path / "instance"),  # the same as make_services'
        "DATABASE_URL": postgres_url,
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    params = StdioServerParameters(
        command=sys.executable, args=[str(PROJECT_ROOT / "mcp_server.py")], env=server_env
    )
    controls = emulator.controls
    # Both re-validate the order, then are let go together at the last calls before the claim.
    holds = [controls.hold(SYMBOLS), controls.hold(ORDERS)]

    async def run() -> list[Any]:
        results: list[Any] = [None, None]
        async with AsyncExitStack() as stack:
            sessions = []
            for _ in ids:
                read, write = await stack.enter_async_context(stdio_client(params))
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                await session.call_tool("list_trades", {"limit": 1})  # the server is built
                sessions.append(session)

            async def execute(index: int) -> None:
                arguments = {"preview_id": ids[index]}
                results[index] = await sessions[index].call_tool("execute_trade", arguments)

            async with anyio.create_task_group() as group:
                for index in range(2):
                    group.start_soon(execute, index)
                for hold in holds:
                    await anyio.to_thread.run_sync(functools.partial(hold.wait_until_held, 2, 60))
                    hold.release()
        return results

    try:
        results = anyio.run(run)
    finally:
        controls.release()
    placed = [r for r in results if not r.is_error]
    refused = [error_text(r) for r in results if r.is_error]
    assert len(placed) == 1 and payload(placed[0])["status"] == "placed"
    assert len(refused) == 1 and refusal in refused[0], refused
    assert controls.calls(PLACE) == 1


# --- 7. malformed input never reaches a provider --------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("preview_trade", sell(1e-300), "out of bounds"),
        ("preview_trade", sell(True), "quantity"),
        ("preview_trade", sell("5"), "quantity"),
        ("preview_trade", sell(1e15, order_type="Limit", limit_price=1e-12), "out of bounds"),
        ("preview_trade", sell(1, account_id=HUGE), "account_id"),
        ("execute_trade", {"preview_id": HUGE}, "unknown preview_id"),
    ],
    ids=["tiny", "true", "string", "huge-at-nothing", "huge-account", "huge-preview-id"],
)
def test_bad_input_is_a_short_error_without_any_provider_call(
    hub: Hub, emulator: Any, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    services = hub()
    emulator.controls.reset_counts()
    (result,) = call(services, (tool, arguments), person=Person("accept"))
    text = error_text(result)
    assert expected in text
    assert len(text) < 500 and "a" * 100 not in text
    assert emulator.controls.calls() == 0
