"""Refreshes that cost money are deliberate: a refresh is a POST (web) or a tool argument
(MCP), and each Plaid Item or SnapTrade account is fetched at most once per
REFRESH_COOLDOWN_SECONDS on request. Within it a refresh answers from the rows just fetched,
says so in cache_info, calls no provider, and the cost report counts it. SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import demo
from services.positions.cooldown import plan_requested_refresh
from services.storage.users import user_id_for
from services.webhooks.freshness import EVERY_SOURCE, Freshness
from tests.conftest import FakeClock, make_services
from tests.mcp_fixtures import call_tool, payload
from tests.web_fixtures import csrf_token, logged_in_client, make_app, post

HOLDINGS = "plaid /investments/holdings/get"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
JSON = {"Accept": "application/json"}
COOLDOWN = 300  # the default


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    """Both providers fetched once, then long enough ago that a refresh may fetch again."""
    built = make_services(tmp_path, database_url, emulator, clock)
    built.position_views.answer("summary")
    clock.advance(minutes=10)
    emulator.controls.reset_counts()
    yield built
    built.close()


def refresh_info(answer: dict[str, Any], provider: str) -> dict[str, Any]:
    return answer["cache_info"][provider]["refresh"]


def mcp_refresh(hub: Any, provider: str) -> dict[str, Any]:
    arguments = {"format": "summary", "refresh_provider": provider}
    return payload(call_tool(hub, "get_positions", arguments))


def web_refresh(client: Any, provider: str) -> Any:
    data = {"provider": provider, "format": "summary"}
    return post(client, "/positions/refresh", data, headers=JSON)


# --- the web: a refresh is a POST ---------------------------------------------------------------


@pytest.mark.parametrize("provider", ["plaid", "snaptrade"])
def test_a_get_that_asks_for_a_refresh_is_refused_and_calls_no_provider(
    services: Any, emulator: Any, provider: str
) -> None:
    client = logged_in_client(services)
    emulator.controls.reset_counts()
    response = client.get(f"/api/positions?format=summary&refresh_provider={provider}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "refresh_provider"
    assert "POST /positions/refresh" in error["message"]
    assert emulator.controls.calls() == 0


def test_a_posted_refresh_fetches_once_then_answers_from_those_rows_until_the_cooldown_ends(
    hub: Any, emulator: Any, clock: FakeClock
) -> None:
    client = logged_in_client(hub)
    first = web_refresh(client, "plaid")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert emulator.controls.calls(HOLDINGS) == 2  # one per Item
    assert refresh_info(first.get_json(), "plaid") == {
        "requested": True,
        "done": True,
        "reason": None,
        "retry_after_seconds": None,
        "sources_from_cache": [],
    }
    assert first.get_json()["cache_info"]["snaptrade"]["refresh"] is None

    clock.advance(seconds=60)
    second = web_refresh(client, "plaid").get_json()
    assert emulator.controls.calls() == 2  # no call at all
    assert second["refresh"] == {"provider": "plaid", "ok": True, "error": None}
    info = refresh_info(second, "plaid")
    assert info["done"] is False and info["reason"] == "cooldown"
    assert info["retry_after_seconds"] == COOLDOWN - 60
    assert second["cache_info"]["plaid"]["from_cache"] is True
    assert second["summary"]["by_provider"] == first.get_json()["summary"]["by_provider"]

    clock.advance(seconds=COOLDOWN - 60)
    third = web_refresh(client, "plaid").get_json()
    assert refresh_info(third, "plaid")["done"] is True
    assert emulator.controls.calls(HOLDINGS) == 4


def test_the_refresh_button_says_the_rows_just_fetched_are_shown_without_a_call(
    services: Any, emulator: Any
) -> None:
    client = logged_in_client(services)
    client.get("/")  # both providers fetched now
    emulator.controls.reset_counts()
    response = post(client, "/positions/refresh", {"provider": "plaid"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Plaid positions were fetched in the last few minutes" in page
    assert "A refresh can fetch again in 5 minutes." in page
    assert emulator.controls.calls() == 0


# --- MCP: the tool argument, held to the same cooldown -------------------------------------------


def test_get_positions_refreshes_each_provider_once_per_cooldown(
    hub: Any, emulator: Any, clock: FakeClock
) -> None:
    assert refresh_info(mcp_refresh(hub, "plaid"), "plaid")["done"] is True
    assert refresh_info(mcp_refresh(hub, "snaptrade"), "snaptrade")["done"] is True
    fetched = emulator.controls.calls()
    assert emulator.controls.calls(HOLDINGS) == 2

    for provider in ("plaid", "snaptrade", "plaid"):
        info = refresh_info(mcp_refresh(hub, provider), provider)
        assert info["done"] is False and info["reason"] == "cooldown"
        assert 0 < info["retry_after_seconds"] <= COOLDOWN
    assert emulator.controls.calls() == fetched

    clock.advance(seconds=COOLDOWN)
    assert refresh_info(mcp_refresh(hub, "plaid"), "plaid")["done"] is True
    assert emulator.controls.calls(HOLDINGS) == 4


def test_the_cooldown_holds_across_workers(
    hub: Any, tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> None:
    other_worker = make_services(tmp_path, database_url, emulator, clock)
    try:
        assert refresh_info(mcp_refresh(hub, "plaid"), "plaid")["done"] is True
        info = refresh_info(mcp_refresh(other_worker, "plaid"), "plaid")
        assert info["reason"] == "cooldown"
        assert emulator.controls.calls(HOLDINGS) == 2
        refused = other_worker.costs.report()["plaid"]["refreshes_refused_by_cooldown_last_30_days"]
        assert refused == 1
    finally:
        other_worker.close()


def test_only_the_items_not_fetched_within_the_cooldown_are_fetched(
    hub: Any, emulator: Any, clock: FakeClock
) -> None:
    # A webhook said Merrill's holdings changed: the next read refreshes that Item alone.
    user_id = user_id_for(hub.engine, hub.user_email)
    with hub.engine.begin() as conn:
        hub.freshness.mark(conn, user_id, "plaid", "merrill-lynch", sent_at=clock(), due=True)
    hub.position_views.answer("summary")
    merrill = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
    ibkr = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
    assert emulator.controls.calls(HOLDINGS, merrill) == 1
    assert emulator.controls.calls(HOLDINGS) == 1
    clock.advance(seconds=1)

    info = refresh_info(mcp_refresh(hub, "plaid"), "plaid")
    assert emulator.controls.calls(HOLDINGS, merrill) == 1  # fetched a second ago
    assert emulator.controls.calls(HOLDINGS, ibkr) == 1
    assert info["done"] is True and info["reason"] == "cooldown"
    assert info["sources_from_cache"] == ["merrill-lynch"]
    assert info["retry_after_seconds"] == COOLDOWN - 1

    spared = hub.costs.report()["plaid"]
    assert spared["refreshes_refused_by_cooldown_last_30_days"] == 0  # it did fetch
    assert spared["holdings_calls_spared_by_cooldown_last_30_days"] == 1


def test_a_cooldown_of_zero_refreshes_every_time(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    hub = make_services(tmp_path, sqlite_url, emulator, clock, REFRESH_COOLDOWN_SECONDS="0")
    try:
        for _ in range(3):
            assert refresh_info(mcp_refresh(hub, "plaid"), "plaid")["done"] is True
        assert emulator.controls.calls(HOLDINGS) == 6
    finally:
        hub.close()


# --- the cost report -----------------------------------------------------------------------------


def test_the_cost_report_counts_each_refused_refresh_once_per_provider(
    hub: Any, emulator: Any, clock: FakeClock
) -> None:
    client = logged_in_client(hub)
    web_refresh(client, "plaid")
    web_refresh(client, "snaptrade")
    accounts = len(emulator.controls.calls_by_subject(SNAP_POSITIONS))
    web_refresh(client, "plaid")
    mcp_refresh(hub, "plaid")
    post(client, "/positions/refresh", {"provider": "snaptrade"})  # the page's button

    report = hub.costs.report()
    assert report["plaid"]["refreshes_refused_by_cooldown_last_30_days"] == 2
    assert report["plaid"]["holdings_calls_spared_by_cooldown_last_30_days"] == 4  # 2 Items
    assert report["snaptrade"]["refreshes_refused_by_cooldown_last_30_days"] == 1
    assert report["snaptrade"]["holdings_calls_spared_by_cooldown_last_30_days"] == accounts
    page = client.get("/costs").get_data(as_text=True)
    assert "The refresh cooldown answered 2 refresh(es) in 30 days" in page

    clock.advance(days=31)
    later = hub.costs.report()
    assert later["plaid"]["refreshes_refused_by_cooldown_last_30_days"] == 0
    assert later["snaptrade"]["refreshes_refused_by_cooldown_last_30_days"] == 0


def test_the_cli_cost_report_shows_the_refusals(hub: Any) -> None:
    mcp_refresh(hub, "plaid")
    mcp_refresh(hub, "plaid")
    result = make_app(hub).test_cli_runner().invoke(args=["costs"])
    assert result.exit_code == 0, result.output
    assert '"refreshes_refused_by_cooldown_last_30_days": 1' in result.output


def test_a_csrf_token_from_the_page_is_all_a_script_needs(hub: Any, emulator: Any) -> None:
    client = logged_in_client(hub)
    response = client.post(
        "/positions/refresh",
        data={"provider": "snaptrade", "format": "list"},
        headers={**JSON, "X-CSRF-Token": csrf_token(client)},
    )
    assert response.status_code == 200
    assert response.get_json()["format"] == "list"
    assert refresh_info(response.get_json(), "snaptrade")["done"] is True


# --- the plan ------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


def source(name: str, seconds_ago: float | None, provider: str = "plaid") -> Freshness:
    at = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    return Freshness(provider, name, None, None, at)


@pytest.mark.parametrize(
    ("fetched_ago", "sources", "refuse", "skip", "retry"),
    [
        (None, [], False, set(), None),  # never fetched: nothing to answer from
        (600, [source("a", 600), source("b", 600)], False, set(), None),
        (10, [], True, set(), 290),  # no source rows: the provider's fetch decides
        (10, [source("a", 10), source("b", 10), source(EVERY_SOURCE, 10)], True, {"a", "b"}, 290),
        (10, [source("a", 10), source("b", 900)], False, {"a"}, 290),  # b failed then
        (600, [source("a", 30), source("b", 600)], False, {"a"}, 270),  # a by a webhook
        (600, [source("a", 30), source("b", 100)], True, {"a", "b"}, 200),
        (10, [source("a", 10), source("x", 1, provider="snaptrade")], True, {"a"}, 290),
    ],
)
def test_a_requested_refresh_skips_what_was_fetched_within_the_cooldown(
    fetched_ago: float | None,
    sources: list[Freshness],
    refuse: bool,
    skip: set[str],
    retry: int | None,
) -> None:
    fetched_at = None if fetched_ago is None else NOW - timedelta(seconds=fetched_ago)
    plan = plan_requested_refresh(
        "plaid", fetched_at, sources, now=NOW, cooldown=timedelta(seconds=COOLDOWN)
    )
    assert (plan.refuse, set(plan.skip), plan.retry_after_seconds) == (refuse, skip, retry)


def test_a_cooldown_of_zero_skips_nothing() -> None:
    plan = plan_requested_refresh("plaid", NOW, [source("a", 0)], now=NOW, cooldown=timedelta(0))
    assert (plan.refuse, plan.skip, plan.retry_after_seconds) == (False, frozenset(), None)
