"""A disabled provider (``PLAID_ENV=disabled`` / ``SNAPTRADE_ENV=disabled``) is never called.

Counted at the emulator, on SQLite and Postgres: positions, refreshes, health, costs,
linking and trading leave the disabled provider alone; every surface (the MCP tools,
the CLI, the pages) shows it as disabled rather than as an error, and the cost report
still shows what is billed at it, with how to end that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from core.errors import ProviderDisabled
from sandbox import data
from tests.conftest import make_services
from tests.mcp_fixtures import call_tool, payload
from tests.web_fixtures import logged_in_client, post

# Outside the embedded default the web app needs to know its own address.
WEB = {"PUBLIC_BASE_URL": "http://127.0.0.1:5000"}


def calls_to(emulator: Any, provider: str) -> int:
    """Every request the emulator received for ``provider`` (its endpoints are keyed by it)."""
    controls = emulator.controls
    return sum(controls.calls(e) for e in controls.endpoints if e.startswith(f"{provider} "))


@pytest.fixture
def plaid_disabled(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Any:
    """Plaid switched off after both providers were used: its tokens and rows are left over."""
    before = make_services(tmp_path, database_url, emulator, clock)
    before.position_views.answer("summary")  # rows of both providers in the cache
    assert calls_to(emulator, "plaid") > 0
    before.close()
    emulator.controls.reset_counts()
    built = make_services(tmp_path, database_url, emulator, clock, PLAID_ENV="disabled", **WEB)
    yield built
    built.close()


@pytest.fixture
def snaptrade_disabled(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Any:
    before = make_services(tmp_path, database_url, emulator, clock)
    before.position_views.answer("summary")
    before.close()
    emulator.controls.reset_counts()
    built = make_services(tmp_path, database_url, emulator, clock, SNAPTRADE_ENV="disabled", **WEB)
    yield built
    built.close()


def test_a_disabled_provider_is_never_fetched_and_its_old_rows_are_not_shown(
    plaid_disabled: Any, emulator: Any, clock: Any
) -> None:
    answer = plaid_disabled.position_views.answer("by_account")
    assert {p["provider"] for p in answer["providers"]} == {"snaptrade"}
    full = plaid_disabled.position_views.answer("full", limit=100)
    assert {p["provider"] for p in full["positions"]} == {"snaptrade"}
    clock.advance(hours=500)  # every cache expired: still nothing is asked of Plaid
    plaid_disabled.position_views.answer("summary")
    assert calls_to(emulator, "plaid") == 0
    assert calls_to(emulator, "snaptrade") > 0


def test_cache_info_says_a_disabled_provider_is_disabled(plaid_disabled: Any) -> None:
    info = plaid_disabled.position_views.answer("summary")["cache_info"]
    assert info["plaid"] == {
        "environment": "disabled",
        "disabled": True,
        "age_hours": None,
        "ttl_hours": None,
        "fresh_by": None,
        "due_sources": [],
        "from_cache": False,
        "as_of": None,
        "next_refresh_after": None,
        "stale": False,
        "error": None,
        "warning": None,
        "refresh": None,
        "note": "Plaid is disabled here (PLAID_ENV=disabled): it is never called and "
        "positions stored from before are not shown",
        "connections": [],
        "attention": None,
    }
    assert info["snaptrade"]["environment"] == "emulator"
    assert info["snaptrade"]["disabled"] is False
    assert info["snaptrade"]["as_of"]


def test_refreshing_a_disabled_provider_is_refused_without_a_call(
    plaid_disabled: Any, emulator: Any
) -> None:
    answer = plaid_disabled.position_views.answer("summary", "plaid")
    assert answer["refresh"] == {
        "provider": "plaid",
        "ok": False,
        "error": "Plaid is disabled here (PLAID_ENV=disabled): it is never called",
    }
    with pytest.raises(ProviderDisabled):
        plaid_disabled.positions.refresh_provider_positions("plaid")
    assert calls_to(emulator, "plaid") == 0


def test_health_reports_a_disabled_provider_as_disabled_without_asking_it(
    plaid_disabled: Any, emulator: Any
) -> None:
    report = plaid_disabled.health.check_connections()
    assert report["plaid"] == {
        "ok": None,
        "status": "disabled",
        "environment": "disabled",
        "error": None,
        "connections": [],
        "note": "Plaid is disabled here (PLAID_ENV=disabled): it is never called",
    }
    assert report["snaptrade"]["status"] == "ok" and report["snaptrade"]["connections"]
    assert not any("Plaid" in line for line in report["needs_attention"])
    assert calls_to(emulator, "plaid") == 0


def test_costs_still_show_items_billed_at_a_disabled_provider_and_how_to_end_them(
    plaid_disabled: Any, emulator: Any
) -> None:
    report = plaid_disabled.costs.report()
    assert report["plaid"]["environment"] == "disabled"
    assert report["plaid"]["billable_items"] == 2
    assert report["plaid"]["monthly_usd"] == 0.60
    line = next(w for w in report["waste"] if w.startswith("Plaid is disabled here"))
    assert "2 Item(s) still exist at Plaid and are billed (USD 0.60 a month)" in line
    assert "interactive-brokers, merrill-lynch" in line
    assert "remove_plaid_institution('demo@brokerage-hub.local', '<institution>'" in line
    assert "dry_run=False" in line
    assert calls_to(emulator, "plaid") == 0


def test_costs_still_show_a_snaptrade_user_billed_while_snaptrade_is_disabled(
    snaptrade_disabled: Any, emulator: Any
) -> None:
    report = snaptrade_disabled.costs.report()
    assert report["snaptrade"]["environment"] == "disabled"
    assert report["snaptrade"]["connected_users"] == 1
    line = next(w for w in report["waste"] if w.startswith("SnapTrade is disabled here"))
    assert "still exists and is billed (USD 2.00 a month)" in line
    assert "delete_snap_trade_user" in line
    assert calls_to(emulator, "snaptrade") == 0


def test_linking_a_disabled_plaid_is_refused_before_any_call(
    plaid_disabled: Any, emulator: Any
) -> None:
    with pytest.raises(ProviderDisabled, match="PLAID_ENV=disabled") as refused:
        plaid_disabled.plaid_link.start_plaid_link()
    assert refused.value.http_status == 409
    with pytest.raises(ProviderDisabled):
        plaid_disabled.plaid_link.start_plaid_update("merrill-lynch")
    assert calls_to(emulator, "plaid") == 0


def test_connecting_a_disabled_snaptrade_is_refused_before_any_call(
    snaptrade_disabled: Any, emulator: Any
) -> None:
    with pytest.raises(ProviderDisabled, match="SNAPTRADE_ENV=disabled"):
        snaptrade_disabled.snaptrade_portal.start_snaptrade_connection(
            "read", return_url=lambda flow_id: f"http://127.0.0.1:5000/back/{flow_id}"
        )
    assert calls_to(emulator, "snaptrade") == 0


def test_trading_through_a_disabled_snaptrade_is_refused_without_a_call(
    snaptrade_disabled: Any, emulator: Any
) -> None:
    account = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
    with pytest.raises(ProviderDisabled, match="SNAPTRADE_ENV=disabled"):
        snaptrade_disabled.trading.preview_order(account, "SCHB", "BUY", 1, "Market", None)
    answer = snaptrade_disabled.position_views.answer("summary")
    assert answer["cache_info"]["snaptrade"]["disabled"] is True
    assert calls_to(emulator, "snaptrade") == 0


def test_with_both_disabled_nothing_is_ever_called(
    tmp_path: Path, database_url: str, emulator: Any, clock: Any
) -> None:
    hub = make_services(
        tmp_path, database_url, emulator, clock, PLAID_ENV="disabled", SNAPTRADE_ENV="disabled"
    )
    try:
        answer = hub.position_views.answer("summary")
        assert answer["position_count"] == 0
        assert {p: i["disabled"] for p, i in answer["cache_info"].items()} == {
            "plaid": True,
            "snaptrade": True,
        }
        report = hub.health.check_connections()
        assert report["needs_attention"] == []
        hub.costs.report()
        assert emulator.controls.calls() == 0
    finally:
        hub.close()


# --- every surface shows it disabled ------------------------------------------------------


def test_the_mcp_tools_show_a_disabled_provider_as_disabled(
    plaid_disabled: Any, emulator: Any
) -> None:
    positions = payload(call_tool(plaid_disabled, "get_positions", {"format": "summary"}))
    assert positions["cache_info"]["plaid"]["disabled"] is True
    assert positions["environments"] == {"plaid": "disabled", "snaptrade": "emulator"}
    health = payload(call_tool(plaid_disabled, "check_connections", {}))
    assert health["plaid"]["status"] == "disabled"
    costs = payload(call_tool(plaid_disabled, "get_provider_costs", {}))
    assert any(w.startswith("Plaid is disabled here") for w in costs["waste"])
    refused = call_tool(
        plaid_disabled, "get_positions", {"format": "summary", "refresh_provider": "plaid"}
    )
    assert payload(refused)["refresh"]["ok"] is False
    plan = call_tool(
        plaid_disabled, "plan_institution_migration", {"institution": "interactive-brokers"}
    )
    steps = payload(plan)["steps"]
    assert steps[-1] == {
        "step": "dry_run",
        "ok": False,
        "summary": "Plaid is disabled here (PLAID_ENV=disabled): it is never called",
    }
    assert calls_to(emulator, "plaid") == 0


def test_the_cli_shows_a_disabled_provider_as_disabled(plaid_disabled: Any, emulator: Any) -> None:
    runner = create_app({"TESTING": True}, services=plaid_disabled).test_cli_runner()
    positions = runner.invoke(args=["positions"])
    assert positions.exit_code == 0, positions.output
    body = json.loads(positions.output)
    assert body["cache_info"]["plaid"]["disabled"] is True
    assert body["environments"]["plaid"] == "disabled"
    health = runner.invoke(args=["health"])
    assert health.exit_code == 0, health.output  # nothing needs attention
    assert json.loads(health.output)["plaid"]["status"] == "disabled"
    costs = runner.invoke(args=["costs"])
    assert "Plaid is disabled here" in costs.output
    assert calls_to(emulator, "plaid") == 0


def test_the_pages_show_a_disabled_provider_as_disabled(plaid_disabled: Any, emulator: Any) -> None:
    client = logged_in_client(plaid_disabled)
    page = client.get("/").get_data(as_text=True)
    assert 'id="provider-plaid"' in page and "PLAID_ENV=disabled" in page
    assert "Refresh Plaid now" not in page
    assert "Plaid: <strong>disabled</strong>" in page
    connections = client.get("/connections").get_data(as_text=True)
    assert "Plaid is disabled here (PLAID_ENV=disabled)" in connections
    assert "Link an institution with Plaid" not in connections
    assert "could not be checked" not in connections
    plaid_page = client.get("/plaid/")
    assert plaid_page.status_code == 200
    assert "Plaid is disabled here" in plaid_page.get_data(as_text=True)
    costs = client.get("/costs").get_data(as_text=True)
    assert "Plaid is disabled here (PLAID_ENV=disabled) but 2 Item(s) still exist" in costs
    # A link started anyway (an old form, a script) is refused with the reason.
    refused = post(client, "/plaid/link", follow_redirects=True)
    assert "Plaid is disabled here (PLAID_ENV=disabled)" in refused.get_data(as_text=True)
    assert calls_to(emulator, "plaid") == 0


def test_the_snaptrade_pages_refuse_to_open_the_portal_when_it_is_disabled(
    snaptrade_disabled: Any, emulator: Any
) -> None:
    client = logged_in_client(snaptrade_disabled)
    connections = client.get("/snaptrade/").get_data(as_text=True)
    assert "SnapTrade is disabled here (SNAPTRADE_ENV=disabled)" in connections
    assert "Connect a brokerage with SnapTrade" not in connections
    refused = post(client, "/snaptrade/connect", {"connection_type": "read"}, follow_redirects=True)
    assert "SnapTrade is disabled here (SNAPTRADE_ENV=disabled)" in refused.get_data(as_text=True)
    assert calls_to(emulator, "snaptrade") == 0
