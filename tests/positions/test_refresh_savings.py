"""Calls avoided: each refresh the lifetime rule alone would have made is counted once,
however many workers read at that moment, and none while the rows are within their
lifetime. SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.webhooks.savings import RefreshSavings
from tests.conftest import FakeClock, make_services

LIFETIME_HOURS = 24


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    yield built
    built.close()


def test_workers_reading_at_once_count_one_avoided_refresh(hub: Any, clock: FakeClock) -> None:
    user_id = hub.positions.user_id()
    fetched_at = clock()
    workers = [RefreshSavings(hub.engine, clock) for _ in range(3)]  # each its own memory

    def everyone_reads() -> None:
        for worker in workers:
            worker.note_read(
                user_id, "plaid", fetched_at=fetched_at, ttl_hours=LIFETIME_HOURS, sources=2
            )

    clock.advance(hours=LIFETIME_HOURS - 1)
    everyone_reads()  # within the lifetime: the lifetime rule would not have fetched either
    assert workers[0].calls_avoided(user_id) == {}
    clock.advance(hours=1)
    everyone_reads()
    everyone_reads()
    assert workers[0].calls_avoided(user_id) == {"plaid": 2}  # one refresh, two Items
    clock.advance(hours=LIFETIME_HOURS - 1)
    everyone_reads()  # 23 h after that refresh: the lifetime rule would serve its rows
    assert workers[1].calls_avoided(user_id) == {"plaid": 2}
    clock.advance(hours=1)
    everyone_reads()
    assert workers[2].calls_avoided(user_id) == {"plaid": 4}
    # A month later, the report's window has passed them.
    clock.advance(days=31)
    assert workers[2].calls_avoided(user_id) == {}
