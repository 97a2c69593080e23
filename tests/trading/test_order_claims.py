"""Placing an order claims its preview: a preview that stopped being placeable after it was
loaded (the person rejected it, or it expired) is never claimed and nothing reaches the broker.

An execute is held at the emulator while it re-validates the order (a symbol search),
after it loaded the confirmed preview and before it claims it; the preview changes in
that gap. Real SnapTrade SDK over loopback; SQLite and Postgres.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import Conflict
from sandbox import data
from tests.conftest import FakeClock, make_services

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
PLACE = "snaptrade /trade/{tradeId}"
SYMBOLS = "snaptrade /accounts/{accountId}/symbols"


@pytest.fixture
def trading_services(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


def execute_with_a_change_before_the_claim(
    trading: Any, emulator: Any, preview_id: str, change: Callable[[], None]
) -> Any:
    """Run execute_order, apply ``change`` while it is held after loading the preview, and
    return what execute_order returned or raised."""
    outcome: queue.Queue[Any] = queue.Queue()

    def execute() -> None:
        try:
            outcome.put(trading.execute_order(preview_id))
        except Exception as exc:  # the outcome is what the test checks
            outcome.put(exc)

    thread = threading.Thread(target=execute)
    with emulator.controls.hold(SYMBOLS) as validation:
        thread.start()
        validation.wait_until_held(1)
        change()
        validation.release()
    thread.join(timeout=30)
    return outcome.get(timeout=30)


def test_a_preview_rejected_after_it_was_loaded_is_not_claimed_and_nothing_is_placed(
    trading_services: Any, emulator: Any
) -> None:
    trading = trading_services.trading
    preview_id = trading.preview_order(SCHWAB, "SCHB", "BUY", 1)["preview_id"]
    trading.confirm(preview_id, via="web")

    def reject() -> None:
        assert trading.reject(preview_id, via="web")["status"] == "rejected"

    refused = execute_with_a_change_before_the_claim(trading, emulator, preview_id, reject)
    assert isinstance(refused, Conflict), refused
    assert "rejected by the person" in refused.message
    assert emulator.controls.calls(PLACE) == 0
    trade = trading.list_trades()[0]
    assert trade["status"] == "rejected" and trade["execution"] is None


def test_a_preview_that_expired_after_it_was_loaded_is_not_claimed_and_nothing_is_placed(
    trading_services: Any, emulator: Any, clock: FakeClock
) -> None:
    trading = trading_services.trading
    preview_id = trading.preview_order(SCHWAB, "SCHB", "BUY", 1)["preview_id"]
    trading.confirm(preview_id, via="web")
    lifetime = trading.policy.preview_lifetime

    def expire() -> None:
        clock.advance(seconds=lifetime.total_seconds() + 1)

    refused = execute_with_a_change_before_the_claim(trading, emulator, preview_id, expire)
    assert isinstance(refused, Conflict), refused
    assert "expired" in refused.message
    assert emulator.controls.calls(PLACE) == 0
    assert trading.list_trades()[0]["execution"] is None
