"""The position cache: per-provider lifetimes, nothing lost on failure, one fetch for many."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select

from sandbox import data
from services.models import PositionRow, PositionSnapshot
from services.positions.fetchers import ProviderFetch
from services.positions.service import PositionService
from services.positions.store import PositionRowWriter, positions_from_rows

HOLDINGS = "plaid /investments/holdings/get"
SNAP_ACCOUNTS = "snaptrade /accounts"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
PLAID_ITEMS = len(data.PLAID_ITEM_IDS)  # a full Plaid fetch is one holdings call per Item


def counts(emulator: Any) -> tuple[int, int]:
    return emulator.controls.calls(HOLDINGS), emulator.controls.calls(SNAP_POSITIONS)


def row_count(services: Any, provider: str) -> int:
    with services.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(PositionRow).where(PositionRow.provider == provider)
        ).scalar_one()


def snapshot_rows(services: Any, provider: str) -> list[tuple]:
    with services.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(PositionRow.account_id, PositionRow.ticker, PositionRow.quantity)
                .where(PositionRow.provider == provider)
                .order_by(PositionRow.id)
            )
        ]


def test_cache_hours_for_provider_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAID_CACHE_HOURS", "96")
    monkeypatch.delenv("SNAPTRADE_CACHE_HOURS", raising=False)
    # On the class (as a REPL calls it): the configured lifetimes, read when asked.
    assert PositionService.cache_hours_for_provider("plaid") == 96
    assert PositionService.cache_hours_for_provider("snaptrade") == 24
    assert PositionService.cache_hours_for_provider("other") == PositionService.CACHE_HOURS


def test_a_service_uses_the_lifetimes_it_was_built_with(services: Any) -> None:
    built = PositionService(
        engine=services.engine,
        user_email=services.user_email,
        fetchers={},
        clock=services.clock,
        cache_hours={"plaid": 5, "snaptrade": 7},
    )
    assert built.cache_hours_for_provider("plaid") == 5
    assert built.cache_hours_for_provider("snaptrade") == 7


def test_first_read_fetches_both_then_serves_from_cache(services: Any, emulator: Any) -> None:
    service = services.positions
    first = service.get_all_positions()
    assert emulator.controls.calls(HOLDINGS) == PLAID_ITEMS
    assert first.cache_metadata["plaid"]["from_cache"] is False
    assert first.cache_metadata["plaid"]["cache_age_hours"] is None
    after_first_read = emulator.controls.calls()
    second = service.get_all_positions()
    # The second read is served from the database: no provider is called at all.
    assert emulator.controls.calls() == after_first_read
    assert second.cache_metadata["plaid"]["from_cache"] is True
    assert second.cache_metadata["snaptrade"]["from_cache"] is True
    assert len(second.positions) == len(first.positions) >= 30


def test_at_48_hours_plaid_is_cached_and_snaptrade_is_fetched(
    services: Any, emulator: Any, clock: Any
) -> None:
    service = services.positions
    service.get_all_positions()
    plaid_before, snap_before = counts(emulator)
    clock.advance(hours=48)
    result = service.get_all_positions()
    plaid_after, snap_after = counts(emulator)
    assert plaid_after == plaid_before
    assert snap_after > snap_before
    assert result.cache_metadata["plaid"]["from_cache"] is True
    assert result.cache_metadata["plaid"]["cache_age_hours"] == pytest.approx(48)
    assert result.cache_metadata["snaptrade"]["from_cache"] is False


def test_at_73_hours_both_are_fetched(services: Any, emulator: Any, clock: Any) -> None:
    service = services.positions
    service.get_all_positions()
    plaid_before, snap_before = counts(emulator)
    clock.advance(hours=73)
    service.get_all_positions()
    plaid_after, snap_after = counts(emulator)
    assert plaid_after == plaid_before + PLAID_ITEMS
    assert snap_after > snap_before


def test_check_cache_freshness_reports_age(services: Any, clock: Any) -> None:
    service = services.positions
    assert service._check_cache_freshness("plaid") == (False, None)
    service.get_all_positions()
    clock.advance(hours=71)
    fresh, hours = service._check_cache_freshness("plaid")
    assert fresh is True and hours == pytest.approx(71)
    clock.advance(hours=2)
    assert service._check_cache_freshness("plaid")[0] is False


def test_a_failed_refresh_leaves_the_previous_rows(services: Any, emulator: Any) -> None:
    service = services.positions
    service.get_all_positions()
    before = snapshot_rows(services, "plaid")
    emulator.controls.fail(HOLDINGS, "INSTITUTION_DOWN")
    with pytest.raises(Exception) as caught:
        service.refresh_provider_positions("plaid")
    assert "INSTITUTION_DOWN" in str(caught.value)
    assert snapshot_rows(services, "plaid") == before


def test_an_empty_refresh_raises_and_leaves_the_rows(services: Any, emulator: Any) -> None:
    service = services.positions
    service.get_all_positions()
    before = snapshot_rows(services, "snaptrade")
    assert before
    # The user has no SnapTrade secret any more: the fetch finds no accounts at all.
    from core.secret_names import snaptrade_user_secret_name

    services.secret_store.schedule_deletion(snaptrade_user_secret_name(services.user_email))
    with pytest.raises(ValueError, match="no accounts"):
        service.refresh_provider_positions("snaptrade")
    assert snapshot_rows(services, "snaptrade") == before


class CrashAfterDelete(PositionRowWriter):
    """Deletes the old rows as usual, then fails before the new ones are inserted."""

    def __init__(self) -> None:
        self.deleted = 0

    def delete_rows(self, conn: Any, *condition: Any) -> None:
        super().delete_rows(conn, *condition)
        self.deleted += 1

    def insert_rows(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        raise RuntimeError("power cut between delete and insert")


def test_an_exception_between_delete_and_insert_leaves_the_rows(
    services: Any, emulator: Any
) -> None:
    services.positions.get_all_positions()
    before = snapshot_rows(services, "plaid")
    cached = services.positions.get_cached_positions()
    plaid = positions_from_rows([row for row in cached if row["provider"] == "plaid"])

    def fetch_again(*, automatic: bool) -> ProviderFetch:
        return ProviderFetch(positions=plaid)

    writer = CrashAfterDelete()
    # The same cache (database and user), with a row writer that crashes half way.
    service = PositionService(
        engine=services.engine,
        user_email=services.user_email,
        fetchers={"plaid": fetch_again},
        clock=services.clock,
        row_writer=writer,
    )
    with pytest.raises(RuntimeError, match="power cut"):
        service.refresh_provider_positions("plaid")
    # The old rows were deleted inside the transaction; its rollback brought them back.
    assert writer.deleted == 1
    assert snapshot_rows(services, "plaid") == before


def test_a_stale_provider_that_fails_is_served_stale_with_its_error(
    services: Any, emulator: Any, clock: Any
) -> None:
    service = services.positions
    service.get_all_positions()
    snap_rows = row_count(services, "snaptrade")
    clock.advance(hours=30)
    emulator.controls.fail(SNAP_ACCOUNTS, "500")
    result = service.get_all_positions()
    meta = result.cache_metadata["snaptrade"]
    assert meta["from_cache"] is True and meta["stale"] is True
    assert "500" in meta["error"]
    assert meta["cache_age_hours"] == pytest.approx(30)
    assert sum(1 for p in result.positions if p["provider"] == "snaptrade") == snap_rows
    assert result.cache_metadata["plaid"]["stale"] is False
    # During the back-off window the failing provider is not called again.
    calls = emulator.controls.calls(SNAP_ACCOUNTS)
    service.get_all_positions()
    assert emulator.controls.calls(SNAP_ACCOUNTS) == calls


def test_one_item_needing_login_keeps_its_rows_and_the_other_item_refreshes(
    services: Any, emulator: Any, clock: Any
) -> None:
    service = services.positions

    def plaid_rows(result: Any, institution: str) -> list[dict[str, Any]]:
        return [
            r
            for r in result.positions
            if r["provider"] == "plaid" and r["institution"] == institution
        ]

    first = service.get_all_positions()
    ibkr_before = plaid_rows(first, "Interactive Brokers")
    clock.advance(hours=80)
    from sandbox import demo

    emulator.controls.fail(
        HOLDINGS, "ITEM_LOGIN_REQUIRED", subject=demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
    )
    result = service.get_all_positions()
    assert plaid_rows(result, "Interactive Brokers") == ibkr_before
    merrill = plaid_rows(result, "Merrill Lynch")
    assert merrill and {r["fetched_at"] for r in merrill} == {clock()}
    assert "log in again" in (result.cache_metadata["plaid"]["warning"] or "")
    state = services.connections.get(services.user_email, "plaid", "interactive-brokers")
    assert state is not None and state.status == "login_required"
    # Automatic refreshes stop calling the broken Item until it is repaired.
    clock.advance(hours=80)
    before = emulator.controls.calls(HOLDINGS)
    service.get_all_positions()
    assert emulator.controls.calls(HOLDINGS) == before + 1


def test_delete_provider_positions_removes_only_that_provider(services: Any) -> None:
    service = services.positions
    service.get_all_positions()
    assert service.delete_provider_positions("plaid") > 0
    assert row_count(services, "plaid") == 0
    assert row_count(services, "snaptrade") > 0


def test_an_unknown_provider_is_refused(services: Any, emulator: Any) -> None:
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="allowed values are plaid, snaptrade"):
        services.positions.refresh_provider_positions("robinhood")
    assert emulator.controls.calls() == 0


def reads_fetch_times(statement: str) -> bool:
    """The query with which a reader learns which providers are stale."""
    return statement.lstrip().upper().startswith("SELECT") and (
        f"FROM {PositionSnapshot.__tablename__}" in statement
    )


class StaleChecks:
    """Which threads have read the cache's fetch times (SQLAlchemy engine events).

    A reader decides which providers to fetch from that one read; once every
    reader has made it while the providers' answers are held at the emulator,
    every reader has certainly found the cache stale.
    """

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._threads: set[str] = set()
        self._changed = threading.Condition()
        event.listen(engine, "after_cursor_execute", self._after_execute)

    def _after_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if reads_fetch_times(statement):
            with self._changed:
                self._threads.add(threading.current_thread().name)
                self._changed.notify_all()

    def wait_for(self, threads: set[str], timeout: float = 30) -> None:
        with self._changed:
            done = self._changed.wait_for(lambda: threads <= self._threads, timeout)
            assert done, f"only {sorted(self._threads & threads)} read the cache in {timeout} s"

    def close(self) -> None:
        event.remove(self._engine, "after_cursor_execute", self._after_execute)


def test_eight_concurrent_readers_cause_one_holdings_call_per_item(
    services: Any, emulator: Any
) -> None:
    service = services.positions
    readers = {f"reader-{number}" for number in range(8)}
    results: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(service.get_all_positions())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    checks = StaleChecks(services.engine)
    threads = [threading.Thread(target=read, name=name) for name in sorted(readers)]
    try:
        # The first holdings and accounts calls are parked at the emulator, so no
        # reader can see a refreshed cache until all eight have found it stale.
        with (
            emulator.controls.hold(HOLDINGS) as holdings,
            emulator.controls.hold(SNAP_ACCOUNTS) as accounts,
        ):
            for thread in threads:
                thread.start()
            holdings.wait_until_held(1)
            accounts.wait_until_held(1)
            checks.wait_for(readers)
    finally:
        checks.close()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors
    assert len(results) == 8
    assert emulator.controls.calls(HOLDINGS) == PLAID_ITEMS  # not one per reader
    assert emulator.controls.calls(SNAP_ACCOUNTS) == 1
    assert {len(r.positions) for r in results} == {len(results[0].positions)}


def test_every_call_goes_to_the_ledger(services: Any, emulator: Any) -> None:
    services.positions.get_all_positions()
    assert services.ledger.count(provider="plaid") == emulator.controls.calls(HOLDINGS)
    snaptrade_calls = emulator.controls.calls() - emulator.controls.calls(HOLDINGS)
    assert services.ledger.count(provider="snaptrade") == snaptrade_calls


def _read_positions_in_child(
    database_url: str, plaid_url: str, snap_url: str, instance: str, decided: Any, out: Any
) -> None:
    from services.composition import build_services
    from settings import load_settings

    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": instance,
            "PLAID_BASE_URL": plaid_url,
            "SNAPTRADE_BASE_URL": snap_url,
        },
        use_dotenv=False,
    )
    services = build_services(settings)
    service = services.positions
    told: list[bool] = []

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Tell the parent once this reader has read the fetch times (found what is stale).
        main = threading.current_thread() is threading.main_thread()
        if main and not told and reads_fetch_times(statement):
            told.append(True)
            decided.put(os.getpid())

    event.listen(services.engine, "after_cursor_execute", after_execute)
    out.put(len(service.get_all_positions().positions))


@pytest.mark.postgres
def test_eight_processes_on_postgres_cause_one_holdings_call_per_item(
    tmp_path: Any, postgres_url: str, emulator: Any, clock: Any
) -> None:
    import multiprocessing

    from tests.conftest import make_services

    # Schema and demo user exist before the readers start.
    services = make_services(tmp_path, postgres_url, emulator, clock)
    services.seed_demo_user()
    context = multiprocessing.get_context("fork")
    decided = context.Queue()
    out = context.Queue()
    workers = [
        context.Process(
            target=_read_positions_in_child,
            args=(
                postgres_url,
                emulator.plaid_url,
                emulator.snaptrade_url,
                str(tmp_path / "instance"),
                decided,
                out,
            ),
        )
        for _ in range(8)
    ]
    try:
        # The first holdings and accounts calls are parked at the emulator, so no
        # process can see a refreshed cache until all eight have found it stale.
        with (
            emulator.controls.hold(HOLDINGS) as holdings,
            emulator.controls.hold(SNAP_ACCOUNTS) as accounts,
        ):
            for worker in workers:
                worker.start()
            holdings.wait_until_held(1, timeout=60)
            accounts.wait_until_held(1, timeout=60)
            readers = {decided.get(timeout=60) for _ in workers}
            assert readers == {worker.pid for worker in workers}
    finally:
        for worker in workers:
            worker.join(timeout=90)
    assert [w.exitcode for w in workers] == [0] * 8
    sizes = {out.get(timeout=5) for _ in workers}
    assert len(sizes) == 1 and sizes.pop() >= 30
    assert emulator.controls.calls(HOLDINGS) == PLAID_ITEMS  # not one per process
    assert emulator.controls.calls(SNAP_ACCOUNTS) == 1
