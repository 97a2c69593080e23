"""Connection health: passive by default, one row per connection, errors kept in their row.

Real SDKs over loopback against the emulator; the emulator's call counters show
which calls a check made.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

import snaptrade_loader
from core.errors import ProviderUnavailable
from sandbox import data, demo
from snaptrade_broker_adapter import _extract_authorization_id

IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
SCHWAB_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]
IBKR_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]
SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
SYMBOLS = "snaptrade /accounts/{accountId}/symbols"
BALANCES = "snaptrade /accounts/{accountId}/balances"
DETAIL = "snaptrade /authorizations/{authorizationId}"
ROW_KEYS = {
    "authorization_id",
    "brokerage_name",
    "connection_type",
    "disabled",
    "disabled_date",
    "account_ids",
    "data_ok",
    "trading_ok",
    "trading_error",
}
MESSAGE_1020 = (
    "SnapTrade trading permissions not enabled for Interactive Brokers. Error code 1020 — "
    "contact SnapTrade support to enable app-level trading."
)


def check(services: Any, probe_trading: bool = False) -> dict[str, dict[str, Any]]:
    rows = snaptrade_loader.check_snaptrade_connection_health(
        demo.DEMO_USER_EMAIL,
        services.snaptrade_client(),
        probe_trading,
        user_secret=demo.SNAPTRADE_USER_SECRET,
    )
    return {row["authorization_id"]: row for row in rows}


def ibkr_trading_permission_is_off(emulator: Any) -> None:
    """The precondition of the 1020 tests, read from the emulator's state.

    Interactive Brokers' connection is an enabled trade connection whose trading
    permission is off, so its trading calls answer 403 code 1020 (not 3003 for a
    disabled connection, nor 1066 for a read-only one); Schwab's may trade.
    """
    ibkr = emulator.controls.snaptrade_authorization(IBKR_AUTH)
    assert ibkr is not None
    assert ibkr["type"] == "trade" and ibkr["disabled"] is False
    assert ibkr["trading_allowed"] is False
    assert emulator.controls.trading_allowed(IBKR_AUTH) is False
    assert emulator.controls.trading_allowed(SCHWAB_AUTH) is True


def test_passive_health_makes_no_trading_call_and_reports_every_connection(
    services: Any, emulator: Any
) -> None:
    rows = check(services)
    assert set(rows) == {IBKR_AUTH, SCHWAB_AUTH}
    for row in rows.values():
        assert set(row) == ROW_KEYS
        assert row["connection_type"] == "trade"
        assert row["disabled"] is False and row["disabled_date"] is None
        assert row["data_ok"] is True
        assert row["trading_ok"] is None and row["trading_error"] is None
    assert rows[IBKR_AUTH]["brokerage_name"] == "Interactive Brokers"
    assert rows[IBKR_AUTH]["account_ids"] == [IBKR_ACCOUNT]
    assert emulator.controls.calls(SYMBOLS) == 0
    assert emulator.controls.calls("snaptrade /trade/impact") == 0
    assert emulator.controls.calls(BALANCES) == 2  # one per authorization


def test_probing_reports_the_1020_message_for_ibkr_and_trading_ok_for_schwab(
    services: Any, emulator: Any
) -> None:
    ibkr_trading_permission_is_off(emulator)
    rows = check(services, probe_trading=True)
    assert rows[IBKR_AUTH]["trading_ok"] is False
    assert rows[IBKR_AUTH]["trading_error"] == MESSAGE_1020
    assert rows[SCHWAB_AUTH]["trading_ok"] is True
    assert rows[SCHWAB_AUTH]["trading_error"] is None
    assert emulator.controls.calls(SYMBOLS) == 2
    assert emulator.controls.calls("snaptrade /trade/impact") == 0


def test_a_disabled_connection_is_reported_disabled_and_not_called_further(
    services: Any, emulator: Any
) -> None:
    emulator.controls.disable_connection(IBKR_AUTH)
    rows = check(services, probe_trading=True)
    ibkr = rows[IBKR_AUTH]
    assert ibkr["disabled"] is True and ibkr["disabled_date"]
    assert ibkr["data_ok"] is False and ibkr["trading_ok"] is None
    assert emulator.controls.calls(BALANCES, subject=IBKR_ACCOUNT) == 0
    assert emulator.controls.calls(SYMBOLS, subject=IBKR_ACCOUNT) == 0
    assert rows[SCHWAB_AUTH]["trading_ok"] is True


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ({"id": IBKR_AUTH, "type": "trade"}, IBKR_AUTH),
        (IBKR_AUTH, IBKR_AUTH),
        ({"id": None}, None),
        ("", None),
        (None, None),
    ],
)
def test_an_authorization_id_is_read_from_a_dict_or_a_string(
    authorization: Any, expected: str | None
) -> None:
    assert _extract_authorization_id(authorization) == expected


def test_the_health_check_handles_accounts_whose_authorization_is_a_dict(
    services: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import providers.snaptrade.health as health_adapter

    real = health_adapter.list_user_accounts

    def accounts_with_dict_authorizations(*args: Any) -> list[dict[str, Any]]:
        accounts = real(*args)
        for account in accounts:
            account["brokerage_authorization"] = {"id": account["brokerage_authorization"]}
        return accounts

    monkeypatch.setattr(health_adapter, "list_user_accounts", accounts_with_dict_authorizations)
    rows = check(services)
    assert set(rows) == {IBKR_AUTH, SCHWAB_AUTH}
    assert all(row["data_ok"] for row in rows.values())


def test_an_error_on_one_authorization_stays_in_its_row(services: Any, emulator: Any) -> None:
    emulator.controls.fail(DETAIL, "500", subject=SCHWAB_AUTH)
    rows = check(services)
    schwab = rows[SCHWAB_AUTH]
    assert schwab["data_ok"] is False
    assert schwab["connection_type"] is None
    assert "connection check failed" in schwab["trading_error"]
    assert "HTTP 500" in schwab["trading_error"]
    assert rows[IBKR_AUTH]["data_ok"] is True


def test_failing_to_list_accounts_raises_instead_of_reporting_no_connections(
    services: Any, emulator: Any
) -> None:
    emulator.controls.fail("snaptrade /accounts", "500")
    with pytest.raises(ProviderUnavailable):
        check(services)
    report = services.health.check_connections()
    assert report["snaptrade"]["ok"] is False
    assert "HTTP 500" in report["snaptrade"]["error"]
    assert report["plaid"]["ok"] is True and len(report["plaid"]["connections"]) == 2
    assert any("SnapTrade could not be checked" in line for line in report["needs_attention"])


def test_plaid_health_reports_each_item_and_a_needed_relogin(services: Any, emulator: Any) -> None:
    from plaid_loader import check_plaid_connection_health

    emulator.controls.fail(
        "plaid /item/get",
        "ITEM_LOGIN_REQUIRED",
        subject=demo.PLAID_ACCESS_TOKENS["interactive-brokers"],
    )
    services.seed_demo_user()
    rows = {
        row["institution_slug"]: row
        for row in check_plaid_connection_health(
            demo.DEMO_USER_EMAIL, services.plaid_client(), store=services.secret_store
        )
    }
    merrill, ibkr = rows["merrill-lynch"], rows["interactive-brokers"]
    assert merrill["ok"] is True and merrill["status"] == "ok"
    assert merrill["item_id"] == data.PLAID_ITEM_IDS["merrill-lynch"]
    assert merrill["institution_name"] == "Merrill Lynch"
    assert merrill["consent_expiring"] is False and merrill["consent_expiration_time"] is None
    assert ibkr["ok"] is False and ibkr["needs_relogin"] is True
    assert ibkr["status"] == "login_required"
    assert "log in again" in ibkr["error"]
    assert demo.PLAID_ACCESS_TOKENS["interactive-brokers"] not in json.dumps(rows)


def test_the_check_records_connection_state_and_get_positions_says_so(
    services: Any, emulator: Any
) -> None:

    emulator.controls.disable_connection(IBKR_AUTH)
    report = services.health.check_connections()
    ibkr = next(c for c in report["snaptrade"]["connections"] if c["authorization_id"] == IBKR_AUTH)
    assert ibkr["status"] == "disabled" and ibkr["needs_attention"] is True
    assert f"reconnect='{IBKR_AUTH}'" in ibkr["action"]
    assert any("Interactive Brokers (SnapTrade)" in line for line in report["needs_attention"])
    state = services.connections.get(demo.DEMO_USER_EMAIL, "snaptrade", IBKR_AUTH)
    assert state.status == "disabled" and state.connection_type == "trade"

    info = services.position_views.answer("summary")["cache_info"]["snaptrade"]
    assert "Interactive Brokers: disabled" in info["attention"]
    assert {c["id"]: c["status"] for c in info["connections"]}[IBKR_AUTH] == "disabled"
    assert info["attention"] is not None


def test_a_healthy_check_needs_no_attention(services: Any, emulator: Any) -> None:
    report = services.health.check_connections()
    assert report["needs_attention"] == []
    assert report["probe_trading"] is False
    assert emulator.controls.calls(SYMBOLS) == 0


def test_cli_health_prints_the_report_and_fails_when_something_needs_attention(
    services: Any, emulator: Any
) -> None:
    from app import create_app

    app = create_app({"TESTING": True}, services=services)
    healthy = app.test_cli_runner().invoke(args=["health"])
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.output)["snaptrade"]["ok"] is True
    assert emulator.controls.calls(SYMBOLS) == 0

    ibkr_trading_permission_is_off(emulator)
    probed = app.test_cli_runner().invoke(args=["health", "--probe-trading"])
    assert probed.exit_code == 1
    assert "Error code 1020" in probed.output
    assert "Traceback" not in probed.output


def test_the_support_request_names_the_affected_connections_and_never_a_secret(
    services: Any, emulator: Any
) -> None:
    from app import create_app

    ibkr_trading_permission_is_off(emulator)
    app = create_app({"TESTING": True}, services=services)
    result = app.test_cli_runner().invoke(args=["snaptrade-support-request"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Subject: Enable trading permissions for app" in text
    assert f"Client ID: {demo.SNAPTRADE_CLIENT_ID}" in text
    assert f"Affected authorizations: {IBKR_AUTH}" in text
    assert SCHWAB_AUTH not in text
    assert "Brokerages: Interactive Brokers" in text
    assert "Error: HTTP 403, code 1020 on get_order_impact / place_order endpoints" in text
    assert "Use case: Portfolio rebalancing via MCP tools" in text
    assert demo.SNAPTRADE_CONSUMER_KEY not in text
    assert demo.SNAPTRADE_USER_SECRET not in text


def test_no_support_request_is_needed_when_no_connection_answers_1020(
    services: Any, emulator: Any
) -> None:
    emulator.controls.set_trading_permission(IBKR_AUTH, True)
    assert emulator.controls.trading_allowed(IBKR_AUTH) is True  # no connection answers 1020
    assert "no support request is needed" in services.health.snaptrade_support_request()


def test_check_connections_over_mcp_is_read_only_and_passive(services: Any, emulator: Any) -> None:
    import mcp

    from mcp_server import build_server

    async def run() -> tuple[Any, Any]:
        async with mcp.Client(build_server(services)) as client:
            tools = await client.list_tools()
            return tools, await client.call_tool("check_connections", {})

    tools, result = anyio.run(run)
    tool = next(t for t in tools.tools if t.name == "check_connections")
    assert tool.annotations.read_only_hint is True
    assert tool.annotations.destructive_hint is False
    assert not result.is_error, result.content
    report = result.structured_content.get("result", result.structured_content)
    assert len(report["snaptrade"]["connections"]) == 2
    assert emulator.controls.calls(SYMBOLS) == 0
