"""Activity history on every surface: the MCP tools (in memory and over stdio), the web page
(Flask client and headless Chromium), the CLI, and the cost report's call counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.mcp_fixtures import call_tool, error_text, payload, stdio_server
from tests.web_fixtures import TEST_PASSWORD, logged_in_client, make_app, post

PHONE = {"width": 390, "height": 844}


# --- MCP ---------------------------------------------------------------------------------------


def test_the_tools_answer_pages_and_income(services: Any) -> None:
    page = payload(call_tool(services, "get_activities", {"type": "dividend", "limit": 5}))
    assert len(page["activities"]) == 5 and page["truncated"] is True
    assert {a["type"] for a in page["activities"]} == {"dividend"}
    assert page["environments"] == services.settings.provider_envs
    assert "description" in page["untrusted_fields"]["fields"]
    income = payload(call_tool(services, "get_income", {"period": "last_12_months"}))
    assert income["totals"]["dividends"]["base"] > 0
    assert income["period"]["name"] == "last_12_months"


def test_bad_arguments_answer_an_error_naming_them(services: Any, emulator: Any) -> None:
    emulator.controls.reset_counts()
    result = call_tool(services, "get_activities", {"start_date": "2026-02-30"})
    assert result.is_error and "start_date" in error_text(result)
    result = call_tool(services, "get_income", {"period": "decade"})
    assert result.is_error and "last_quarter" in error_text(result)
    result = call_tool(services, "get_activities", {"ticker": "X" * 5000})
    assert result.is_error and len(error_text(result)) < 600
    assert emulator.controls.calls() == 0


@pytest.mark.slow
def test_get_income_end_to_end_over_stdio(tmp_path: Path, emulator: Any) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    params = stdio_server(tmp_path, emulator)

    async def run() -> tuple[Any, Any, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            income = await session.call_tool("get_income", {"period": "last_year"})
            fees = await session.call_tool("get_activities", {"type": "fee", "limit": 3})
            return tools, income, fees

    tools, income, fees = anyio.run(run)
    listed = {t.name: t for t in tools.tools}
    assert listed["get_activities"].annotations.read_only_hint is True
    assert listed["get_income"].annotations.read_only_hint is True
    report = payload(income)
    assert report["totals"]["dividends"]["native"]["EUR"] > 0  # the foreign dividend
    assert [r["pair"] for r in report["fx"]["rates"]] == ["EUR/USD"]
    assert {a["type"] for a in payload(fees)["activities"]} == {"fee"}


# --- web ---------------------------------------------------------------------------------------


def test_the_activity_page_filters_and_charts_the_income(services: Any) -> None:
    client = logged_in_client(services)
    html = client.get("/activity").get_data(as_text=True)
    assert "Dividends and interest by month" in html and "<svg" in html
    assert "Sync history now" in html
    filtered = client.get("/activity?type=interest").get_data(as_text=True)
    assert "<td>interest</td>" in filtered and "<td>dividend</td>" not in filtered
    bad = client.get("/activity?start_date=someday")
    assert bad.status_code == 400
    assert "start_date" in bad.get_data(as_text=True)


def test_the_sync_button_needs_the_csrf_token(services: Any, emulator: Any) -> None:
    client = logged_in_client(services)
    client.get("/activity")
    emulator.controls.reset_counts()
    refused = client.post("/activity/sync", data={})
    assert refused.status_code in (400, 403)
    assert emulator.controls.calls() == 0
    done = post(client, "/activity/sync")
    assert done.status_code == 303
    assert emulator.controls.calls("plaid /investments/transactions/get") == 2


@pytest.mark.slow
def test_in_chromium_a_person_filters_the_activity_on_a_phone(
    live_demo_app: tuple[str, Any],
) -> None:
    from tests.browser_fixtures import WAIT_MS, Pages, launched_chromium

    base_url, hub = live_demo_app
    with launched_chromium() as browser:
        context = browser.new_context(viewport=PHONE)
        tab = Pages(context.new_page(), base_url)
        page = tab.page
        page.set_default_timeout(WAIT_MS)
        tab.log_in(hub.user_email, TEST_PASSWORD)
        page.click("nav a:has-text('Activity')")
        page.wait_for_selector("figure.income-chart svg")
        page.select_option("select[name=type]", "dividend")
        page.click("button:has-text('Show')")
        page.wait_for_url("**type=dividend**")
        types = page.locator("table.activities tbody tr td:nth-child(2)").all_inner_texts()
        assert types and set(types) == {"dividend"}
        assert tab.overflow() <= 0, f"the activity page is {tab.overflow()}px wider than a phone"
        tab.shot("activity-phone")
        context.close()
    assert tab.problems == []


# --- CLI and costs -----------------------------------------------------------------------------


def test_the_cli_prints_activities_and_income(services: Any) -> None:
    runner = make_app(services).test_cli_runner()
    result = runner.invoke(args=["income", "--period", "last_12_months"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["interest"]["base"] > 0
    result = runner.invoke(args=["activities", "--type", "fee", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert {a["type"] for a in json.loads(result.output)["activities"]} == {"fee"}
    result = runner.invoke(args=["income", "--period", "weekly"])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_the_cost_report_counts_the_activity_calls(services: Any) -> None:
    services.activities.activities()
    calls = services.costs.report()["calls_by_day"]
    text = json.dumps(calls)
    assert "/investments/transactions/get" in text
    assert "/activities" in text
