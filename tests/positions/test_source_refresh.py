"""Each SnapTrade account and Plaid Item is refreshed under its own lock and generation:
one account's refresh never waits for another's, a refresh of the whole provider waits
for them, and a caller that waited for someone else's refresh of a source fetches nothing.
SQLite and Postgres."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.errors import Conflict
from services.positions.fetchers import ProviderFetch
from services.positions.refresh import PositionRefresher
from services.positions.store import PositionStore, positions_from_rows
from services.single_flight import SingleFlight
from tests.conftest import FakeClock, make_services


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    built.positions.get_all_positions()
    clock.advance(minutes=1)
    yield built
    built.close()


class AccountFetcher:
    """SnapTrade positions per account, from the rows cached before; an account listed in
    ``parked`` waits in its fetch until the test lets it go."""

    def __init__(self, rows: list[dict[str, Any]], parked: str | None = None) -> None:
        self.by_account: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            self.by_account.setdefault(row["account_id"], []).append(row)
        self.parked = parked
        self.entered = threading.Event()
        self.go = threading.Event()
        self.asked: list[set[str] | None] = []

    def __call__(self, *, automatic: bool, only: set[str] | None = None) -> ProviderFetch:
        self.asked.append(only)
        wanted = set(self.by_account) if only is None else only
        if self.parked in wanted:
            self.entered.set()
            assert self.go.wait(timeout=30), "the parked fetch was never let go"
        rows = [row for account in sorted(wanted) for row in self.by_account[account]]
        return ProviderFetch(
            positions=positions_from_rows(rows),
            keep_accounts=set(self.by_account) - wanted,
            fetched_sources=wanted,
        )


def snaptrade_rows(hub: Any) -> list[dict[str, Any]]:
    return [row for row in hub.positions.get_cached_positions() if row["provider"] == "snaptrade"]


def refresher_for(hub: Any, fetcher: AccountFetcher, *, wait_seconds: float) -> PositionRefresher:
    return PositionRefresher(
        store=PositionStore(hub.engine, hub.user_email, hub.clock),
        fetchers={"snaptrade": fetcher},
        clock=hub.clock,
        single_flight=SingleFlight(hub.engine, wait_seconds=wait_seconds),
        freshness=hub.freshness,
        lock_name=f"positions:{hub.user_email}",
    )


def generations(hub: Any) -> dict[str, int]:
    user_id = PositionStore(hub.engine, hub.user_email, hub.clock).user_id()
    return {
        row.source: row.generation
        for row in hub.freshness.read(user_id)
        if row.provider == "snaptrade" and row.source != "*"
    }


def snapshot_generation(hub: Any) -> int:
    return PositionStore(hub.engine, hub.user_email, hub.clock).snapshots()["snaptrade"].generation


def test_one_accounts_refresh_never_waits_for_anothers(hub: Any) -> None:
    fetcher = AccountFetcher(snaptrade_rows(hub))
    first, second, *_ = sorted(fetcher.by_account)
    fetcher.parked = first
    seen = generations(hub)
    outcome: dict[str, Any] = {}

    def refresh_first() -> None:
        outcome["first"] = refresher_for(hub, fetcher, wait_seconds=30).refresh(
            "snaptrade",
            automatic=True,
            seen_generation=snapshot_generation(hub),
            only=frozenset({first}),
            seen_sources=seen,
        )

    worker = threading.Thread(target=refresh_first)
    worker.start()
    try:
        assert fetcher.entered.wait(timeout=30)
        # While the first account's fetch is under way, nobody waiting gets its lock or the
        # whole provider's...
        impatient = refresher_for(hub, fetcher, wait_seconds=0)
        for only in (frozenset({first}), None):
            with pytest.raises(Conflict):
                impatient.refresh(
                    "snaptrade",
                    automatic=True,
                    seen_generation=snapshot_generation(hub),
                    only=only,
                    seen_sources=seen,
                )
        if hub.engine.dialect.name == "postgresql":
            with hub.engine.connect() as conn:
                modes = conn.execute(
                    text("SELECT mode FROM pg_locks WHERE locktype = 'advisory' ORDER BY mode")
                ).scalars()
                # the whole provider shared, the account alone exclusively, across processes
                assert list(modes) == ["ExclusiveLock", "ShareLock"]
        # ...but the second account is refreshed at once, beside it.
        assert impatient.refresh(
            "snaptrade",
            automatic=True,
            seen_generation=snapshot_generation(hub),
            only=frozenset({second}),
            seen_sources=seen,
        )
        assert generations(hub)[second] == seen.get(second, 0) + 1
        assert generations(hub).get(first, 0) == seen.get(first, 0)
    finally:
        fetcher.go.set()
        worker.join(timeout=30)
    assert outcome["first"] is True
    assert generations(hub)[first] == seen.get(first, 0) + 1
    cached = {row["account_id"] for row in snaptrade_rows(hub)}
    assert cached == set(fetcher.by_account)  # each refresh kept the others' rows


def test_a_caller_that_waited_fetches_only_what_nobody_stored_meanwhile(hub: Any) -> None:
    fetcher = AccountFetcher(snaptrade_rows(hub))
    first, second, *_ = sorted(fetcher.by_account)
    seen = generations(hub)
    refresher = refresher_for(hub, fetcher, wait_seconds=30)
    assert refresher.refresh(
        "snaptrade",
        automatic=True,
        seen_generation=snapshot_generation(hub),
        only=frozenset({first}),
        seen_sources=seen,
    )
    # A caller that found both due before that refresh stored the first account:
    refetched = refresher.refresh(
        "snaptrade",
        automatic=True,
        seen_generation=snapshot_generation(hub),
        only=frozenset({first, second}),
        seen_sources=seen,
    )
    assert refetched and fetcher.asked == [{first}, {second}]
    # and one that found only the first due fetches nothing at all.
    assert not refresher.refresh(
        "snaptrade",
        automatic=True,
        seen_generation=snapshot_generation(hub),
        only=frozenset({first}),
        seen_sources=seen,
    )
    assert fetcher.asked == [{first}, {second}]
