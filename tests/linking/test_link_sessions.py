"""Links and portal trips live in the database: any process advances them, none duplicates
a provider call, and a process that stops half way loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from core.errors import NotFound
from services.linking.common import KEEP_FOR
from services.linking.link_store import EXCHANGING
from services.linking.plaid_link import FINISH_LEASE
from services.models import PlaidLinkSession
from tests.conftest import FakeClock, make_services

NEW_USER = "new.person@example.com"
LINK_GET = "plaid /link/token/get"
EXCHANGE = "plaid /item/public_token/exchange"


@pytest.fixture
def two_processes(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> Iterator[tuple[Any, Any]]:
    """Two service layers on one database, as two workers (or hosts) would have."""
    first = make_services(tmp_path, database_url, emulator, clock, DEFAULT_USER_EMAIL=NEW_USER)
    second = make_services(tmp_path, database_url, emulator, clock, DEFAULT_USER_EMAIL=NEW_USER)
    yield first, second
    first.close()
    second.close()


def test_a_link_started_in_one_process_is_finished_by_another(
    two_processes: tuple[Any, Any], emulator: Any
) -> None:
    first, second = two_processes
    job = first.plaid_link.start_plaid_link(poll_seconds=5)
    emulator.controls.complete_link(job.link_token, "merrill-lynch")
    finished = second.plaid_link.plaid_job(job.job_id)
    assert finished.status == "done", finished.message
    assert "Merrill Lynch is linked" in finished.message
    assert first.secret_store.exists(f"plaid/access_token/{NEW_USER}/merrill-lynch")
    assert first.plaid_link.plaid_job(job.job_id).status == "done"
    assert emulator.controls.calls(EXCHANGE) == 1


def test_one_link_token_get_per_poll_interval_across_processes(
    two_processes: tuple[Any, Any], emulator: Any, clock: FakeClock
) -> None:
    first, second = two_processes
    job = first.plaid_link.start_plaid_link(poll_seconds=10)
    for service in (first, second, first, second):
        assert service.plaid_link.plaid_job(job.job_id).status == "waiting"
    assert emulator.controls.calls(LINK_GET) == 1
    clock.advance(seconds=10)
    second.plaid_link.plaid_job(job.job_id)
    first.plaid_link.plaid_job(job.job_id)
    assert emulator.controls.calls(LINK_GET) == 2


def test_a_link_whose_process_stopped_half_way_is_taken_over_after_its_lease(
    two_processes: tuple[Any, Any], emulator: Any, clock: FakeClock
) -> None:
    first, second = two_processes
    job = first.plaid_link.start_plaid_link(poll_seconds=5)
    emulator.controls.complete_link(job.link_token, "interactive-brokers")
    # The first process claims the link to finish it, then stops (a worker restart).
    stored = first._links.job(job.job_id)
    now = clock()
    assert first._links.claim_finish(stored, now, now + FINISH_LEASE, EXCHANGING)
    assert second.plaid_link.plaid_job(job.job_id).status == EXCHANGING  # still held
    assert emulator.controls.calls(EXCHANGE) == 0
    clock.now += FINISH_LEASE
    taken_over = second.plaid_link.plaid_job(job.job_id)
    assert taken_over.status == "done", taken_over.message
    assert second.secret_store.exists(f"plaid/access_token/{NEW_USER}/interactive-brokers")
    assert emulator.controls.calls(EXCHANGE) == 1


def test_an_abandoned_link_fails_with_a_reason_and_old_links_are_cleaned_up(
    two_processes: tuple[Any, Any], clock: FakeClock
) -> None:
    first, _ = two_processes
    job = first.plaid_link.start_plaid_link(poll_seconds=5)
    clock.advance(seconds=first.plaid_link.timeout_seconds)
    failed = first.plaid_link.plaid_job(job.job_id)
    assert failed.status == "failed" and "start linking again" in failed.message
    clock.now += KEEP_FOR
    first.plaid_link.start_plaid_link(poll_seconds=5)  # starting a link tidies up
    with pytest.raises(NotFound):
        first.plaid_link.plaid_job(job.job_id)
    with first.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PlaidLinkSession)).scalar() == 1


def test_a_link_of_another_user_cannot_be_seen(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> None:
    mine = make_services(tmp_path, database_url, emulator, clock, DEFAULT_USER_EMAIL=NEW_USER)
    theirs = make_services(tmp_path, database_url, emulator, clock)
    try:
        job = mine.plaid_link.start_plaid_link(poll_seconds=5)
        with pytest.raises(NotFound):
            theirs.plaid_link.plaid_job(job.job_id)
    finally:
        mine.close()
        theirs.close()


# --- the SnapTrade portal ------------------------------------------------------------------


def portal_session_of(flow: Any) -> str:
    """The emulator's portal session id: the last segment of the portal URL it handed out."""
    return urlsplit(flow.portal_url).path.rsplit("/", 1)[1]


def test_coming_back_without_finishing_the_portal_says_nothing_changed(
    two_processes: tuple[Any, Any], emulator: Any
) -> None:
    first, second = two_processes
    flow = first.snaptrade_portal.start_snaptrade_connection("read", return_url=str)
    positions_calls = emulator.controls.calls("snaptrade /accounts/{accountId}/positions/all")
    outcome = second.snaptrade_portal.finish_snaptrade_connection(flow.flow_id)
    assert outcome.ok is False
    assert outcome.message.startswith("Nothing changed")
    assert (
        emulator.controls.calls("snaptrade /accounts/{accountId}/positions/all") == positions_calls
    )


def test_a_finished_portal_trip_says_what_it_connected_once_on_any_process(
    two_processes: tuple[Any, Any], emulator: Any
) -> None:
    first, second = two_processes
    flow = first.snaptrade_portal.start_snaptrade_connection("read", return_url=str)
    emulator.controls.complete_connection(portal_session_of(flow), "charles-schwab")
    outcome = second.snaptrade_portal.finish_snaptrade_connection(flow.flow_id)
    assert outcome.ok is True
    assert outcome.message.startswith("SnapTrade connected Charles Schwab")
    with pytest.raises(NotFound):
        first.snaptrade_portal.finish_snaptrade_connection(flow.flow_id)
