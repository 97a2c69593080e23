"""Order guards whose failure no other test would show: refusing an unconfirmed preview
before SnapTrade is asked anything, the buffer a Market BUY is valued with, and units held
back both by our own recent sells and by open sell orders placed elsewhere.

Service layer, real SnapTrade SDK over loopback against the emulator; SQLite and Postgres.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import Conflict
from sandbox import data
from tests.conftest import FakeClock, make_services
from tests.trading.test_order_limits import place_as_another_party

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
SCHB = next(h for h in data.SCHWAB_INDIVIDUAL.holdings if h.ticker == "SCHB")
PLACE = "snaptrade /trade/{tradeId}"
BUFFER_PERCENT = 5.0


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(
        tmp_path,
        database_url,
        emulator,
        clock,
        TRADING_ENABLED="true",
        MAX_DAILY_ORDER_VALUE="1000000",  # only the units check can refuse a sell here
        MARKET_ORDER_BUFFER_PERCENT=str(BUFFER_PERCENT),
    )
    yield built
    built.close()


def place(trading: Any, side: str, quantity: float) -> dict[str, Any]:
    preview_id = trading.preview_order(SCHWAB, "SCHB", side, quantity)["preview_id"]
    return dict(trading.confirm_and_place(preview_id, via="web"))


def test_a_preview_nobody_confirmed_is_refused_before_any_call_to_snaptrade(
    hub: Any, emulator: Any
) -> None:
    preview_id = hub.trading.preview_order(SCHWAB, "SCHB", "BUY", 1)["preview_id"]
    emulator.controls.reset_counts()
    with pytest.raises(Conflict, match="has not been confirmed by the person"):
        hub.trading.execute_order(preview_id)
    assert emulator.controls.calls() == 0


def test_a_market_buy_is_valued_at_the_highest_known_price_plus_the_buffer(hub: Any) -> None:
    impact = hub.trading.preview_order(SCHWAB, "SCHB", "BUY", 2)["impact"]
    market = impact["market_price"]
    assert market and market > 0
    assert impact["estimated_price"] == pytest.approx(market * (1 + BUFFER_PERCENT / 100))
    assert impact["estimated_value"] == pytest.approx(
        round(2 * market * (1 + BUFFER_PERCENT / 100), 2)
    )
    assert f"plus {BUFFER_PERCENT:g}%" in impact["value_basis"]


def test_units_sold_through_the_hub_and_in_open_orders_elsewhere_are_both_held_back(
    hub: Any, emulator: Any
) -> None:
    ours, elsewhere = SCHB.quantity * 0.25, SCHB.quantity * 0.4
    assert place(hub.trading, "SELL", ours)["status"] == "placed"  # filled, not open
    place_as_another_party(hub, elsewhere, limit=SCHB.price * 1.2)  # above the market: open
    left = SCHB.quantity - ours - elsewhere
    # More than is left, yet less than either of the two alone would leave.
    quantity = SCHB.quantity * 0.5
    assert left < quantity < min(SCHB.quantity - ours, SCHB.quantity - elsewhere)
    emulator.controls.reset_counts()

    with pytest.raises(Conflict) as refused:
        place(hub.trading, "SELL", quantity)
    assert f"cannot sell {quantity:g} SCHB: {left:g} are available" in refused.value.message
    assert emulator.controls.calls(PLACE) == 0
