"""The position cache: per-provider lifetimes, nothing lost on failure, one fetch for many."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from services.models import PositionRow
from services.position_service import PositionService

HOLDINGS = "plaid /investments/holdings/get"
SNAP_ACCOUNTS = "snaptrade /accounts"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"


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
    from settings import PROVIDER_CACHE_HOURS

    assert PositionService.CACHE_HOURS == 24
    monkeypatch.setitem(PROVIDER_CACHE_HOURS, "plaid", 96)
    assert PositionService.cache_hours_for_provider("plaid") == 96
    assert PositionService.cache_hours_for_provider("snaptrade") == 24
    assert PositionService.cache_hours_for_provider("other") == PositionService.CACHE_HOURS


def test_first_read_fetches_both_then_serves_from_cache(services: Any, emulator: Any) -> None:
    service = services.positions
    first = service.get_all_positions()
    plaid_items = emulator.controls.calls(HOLDINGS)
    assert plaid_items == 2
    assert first.cache_metadata["plaid"]["from_cache"] is False
    assert first.cache_metadata["plaid"]["cache_age_hours"] is None
    second = service.get_all_positions()
    assert counts(emulator) == (2, emulator.controls.calls(SNAP_POSITIONS))
    assert emulator.controls.calls() == emulator.controls.calls()  # no new calls below
    before = emulator.controls.calls()
    service.get_all_positions()
    assert emulator.controls.calls() == before
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
    assert plaid_after == plaid_before + 2
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
    from services.secret_store import snaptrade_user_secret_name

    services.secret_store.schedule_deletion(snaptrade_user_secret_name(services.user_email))
    with pytest.raises(ValueError, match="no accounts"):
        service.refresh_provider_positions("snaptrade")
    assert snapshot_rows(services, "snaptrade") == before


def test_an_exception_between_delete_and_insert_leaves_the_rows(
    services: Any, emulator: Any
) -> None:
    service = services.positions
    service.get_all_positions()
    before = snapshot_rows(services, "plaid")

    def crash() -> None:
        # inside the replacement transaction the old rows are already deleted
        raise RuntimeError("power cut")

    service._after_delete_hook = crash
    with pytest.raises(RuntimeError):
        service.refresh_provider_positions("plaid")
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
    from services.errors import InvalidInput

    with pytest.raises(InvalidInput, match="allowed values are plaid, snaptrade"):
        services.positions.refresh_provider_positions("robinhood")
    assert emulator.controls.calls() == 0


def test_eight_concurrent_readers_cause_one_holdings_call_per_item(
    services: Any, emulator: Any
) -> None:
    emulator.controls.set_latency(HOLDINGS, 0.3)
    service = services.positions
    start = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        start.wait()
        try:
            results.append(service.get_all_positions())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert emulator.controls.calls(HOLDINGS) == 2
    assert emulator.controls.calls(SNAP_ACCOUNTS) == 1
    assert {len(r.positions) for r in results} == {len(results[0].positions)}


def test_every_call_goes_to_the_ledger(services: Any, emulator: Any) -> None:
    services.positions.get_all_positions()
    assert services.ledger.count(provider="plaid") == emulator.controls.calls(HOLDINGS)
    assert services.ledger.count(provider="snaptrade") == emulator.controls.calls() - 2


def _read_positions_in_child(
    database_url: str, plaid_url: str, snap_url: str, instance: str, barrier: Any, out: Any
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
    barrier.wait()
    out.put(len(service.get_all_positions().positions))


@pytest.mark.postgres
def test_eight_processes_on_postgres_cause_one_holdings_call_per_item(
    tmp_path: Any, postgres_url: str, emulator: Any, clock: Any
) -> None:
    import multiprocessing

    from tests.conftest import make_services

    # Schema and demo user exist before the readers start.
    services = make_services(tmp_path, postgres_url, emulator, clock)
    services.ensure_demo_user()
    emulator.controls.set_latency(HOLDINGS, 0.5)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(8)
    out = context.Queue()
    workers = [
        context.Process(
            target=_read_positions_in_child,
            args=(
                postgres_url,
                emulator.plaid_url,
                emulator.snaptrade_url,
                str(tmp_path / "instance"),
                barrier,
                out,
            ),
        )
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=90)
    assert [w.exitcode for w in workers] == [0] * 8
    sizes = {out.get(timeout=5) for _ in workers}
    assert len(sizes) == 1 and sizes.pop() >= 30
    assert emulator.controls.calls(HOLDINGS) == 2
    assert emulator.controls.calls(SNAP_ACCOUNTS) == 1
