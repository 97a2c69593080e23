"""The names people call from a REPL work as written, against a fresh embedded default.

Each test starts from an empty instance folder with no settings in the environment,
as a new user's Python session would, and calls the public faces with their defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests

import services.composition.configured as composition_root
from core.errors import InvalidInput, TradingNotPermitted
from core.secret_names import plaid_token_name
from sandbox import demo
from settings import SETTING_NAMES
from tests.retry_waits import RETRY_WAITS

IBKR = "interactive-brokers"


@pytest.fixture
def fresh_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No settings at all, an empty instance folder, and no service layer built yet."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    instance = tmp_path / "instance"
    monkeypatch.setenv("INSTANCE_DIR", str(instance))
    monkeypatch.setattr(composition_root, "_configured", None)
    yield instance
    if composition_root._configured is not None:
        composition_root._configured.close()


def test_build_services_seeds_the_demo_tokens_so_list_user_tokens_sees_them_at_once(
    fresh_default: Path,
) -> None:
    from plaid_loader import list_user_tokens
    from services.composition import build_services

    expected = sorted(
        plaid_token_name(demo.DEMO_USER_EMAIL, slug) for slug in demo.PLAID_ACCESS_TOKENS
    )
    hub = build_services()
    try:
        # Straight after the build, before any service or client has been touched.
        assert (
            hub.secret_store.list_names(f"plaid/access_token/{demo.DEMO_USER_EMAIL}/") == expected
        )
        assert list_user_tokens(demo.DEMO_USER_EMAIL) == expected
    finally:
        hub.close()


def test_the_trade_service_module_maps_the_sdks_1020_exception() -> None:
    from snaptrade_client import ApiException

    from services.trade_execution_service import (
        TRADING_1020_MESSAGE,
        _map_snaptrade_trading_error,
    )

    exc = ApiException(status=403, reason="Forbidden")
    exc.body = {
        "detail": "Trading is not enabled for this client.",
        "status_code": 403,
        "code": "1020",
    }
    mapped = _map_snaptrade_trading_error(exc, "Interactive Brokers")
    assert isinstance(mapped, TradingNotPermitted)
    assert mapped.message == TRADING_1020_MESSAGE.format(brokerage="Interactive Brokers")


def test_wait_for_public_token_uses_the_configured_client(fresh_default: Path) -> None:
    from plaid_loader import create_link_token, wait_for_public_token

    created = create_link_token()  # the configured client, for the configured user
    # The person finishes Hosted Link (the emulator's page stands in for Plaid's).
    finished = requests.post(
        created["hosted_link_url"], data={"institution": "merrill-lynch"}, timeout=10
    )
    assert finished.status_code == 200
    token = wait_for_public_token(created["link_token"], timeout=300, poll=10)
    assert token.startswith("public-")


def test_get_positions_is_a_plain_function_that_answers_what_the_tool_answers(
    fresh_default: Path,
) -> None:
    import mcp

    from mcp_server import build_server
    from mcp_tools.positions import get_positions
    from services.composition import configured_services

    hub = configured_services()

    async def tool(arguments: dict[str, Any]) -> Any:
        async with mcp.Client(build_server(hub)) as client:
            return (await client.call_tool("get_positions", arguments)).structured_content

    anyio.run(tool, {"format": "summary"})  # the first read fetches; both below are cached
    plain = get_positions(format="summary", refresh_provider=None)
    answered = anyio.run(tool, {"format": "summary"})
    assert plain["position_count"] >= 30
    assert plain == answered


def test_a_building_block_without_a_client_uses_the_configured_one(fresh_default: Path) -> None:
    from plaid_loader import get_plaid_item
    from snaptrade_loader import fetch_snaptrade_holdings

    item = get_plaid_item(demo.PLAID_ACCESS_TOKENS[IBKR])
    assert item["item"]["institution_name"] == "Interactive Brokers"
    holdings = fetch_snaptrade_holdings(demo.DEMO_USER_EMAIL)  # secret from the store too
    assert len(holdings["accounts"]) == 2


@pytest.mark.parametrize(
    "call",
    [
        "fetch_plaid_holdings",
        "get_plaid_item",
        "remove_plaid_institution",
        "check_plaid_connection_health",
        "fetch_snaptrade_holdings",
        "check_snaptrade_connection_health",
    ],
)
def test_a_building_block_given_something_else_fails_at_once_naming_the_parameter(
    fresh_default: Path, call: str
) -> None:
    import plaid_loader
    import snaptrade_loader
    from services.composition import configured_services

    not_a_client = {"host": "https://production.plaid.com"}
    calls = {
        "fetch_plaid_holdings": lambda: plaid_loader.fetch_plaid_holdings(
            demo.PLAID_ACCESS_TOKENS[IBKR], not_a_client
        ),
        "get_plaid_item": lambda: plaid_loader.get_plaid_item(
            demo.PLAID_ACCESS_TOKENS[IBKR], not_a_client
        ),
        "remove_plaid_institution": lambda: plaid_loader.remove_plaid_institution(
            demo.DEMO_USER_EMAIL, IBKR, None, not_a_client, dry_run=False
        ),
        "check_plaid_connection_health": lambda: plaid_loader.check_plaid_connection_health(
            demo.DEMO_USER_EMAIL, not_a_client
        ),
        "fetch_snaptrade_holdings": lambda: snaptrade_loader.fetch_snaptrade_holdings(
            demo.DEMO_USER_EMAIL, not_a_client
        ),
        "check_snaptrade_connection_health": lambda: (
            snaptrade_loader.check_snaptrade_connection_health(demo.DEMO_USER_EMAIL, not_a_client)
        ),
    }
    ledger = configured_services().ledger
    calls_before = ledger.count()
    with pytest.raises(InvalidInput) as caught:
        calls[call]()
    assert caught.value.field == "client"
    assert "client must be a" in caught.value.message and "dict" in caught.value.message
    # Refused before anything was sent, and not retried as if the provider were down.
    assert ledger.count() == calls_before
    assert RETRY_WAITS == []


def test_removing_an_institution_for_real_stops_it_being_billed_or_counted(
    fresh_default: Path,
) -> None:
    from plaid_loader import remove_plaid_institution
    from services.composition import configured_services

    hub = configured_services()
    hub.position_views.answer("summary")  # the cache, as a person would have it
    before = hub.costs.report()["plaid"]["billable_items"]

    result = remove_plaid_institution(demo.DEMO_USER_EMAIL, IBKR, dry_run=False)

    assert result["plaid_removed"] and result["secret_deleted"]
    report = hub.costs.report()
    assert report["plaid"]["billable_items"] == before - 1
    assert not [line for line in report["waste"] if "still billed" in line]
    ibkr = next(i for i in report["plaid"]["items"] if i["secret_name"].endswith(f"/{IBKR}"))
    assert ibkr["billable"] is False
    info = hub.position_views.answer("full")
    plaid_connections = {c["id"]: c for c in info["cache_info"]["plaid"]["connections"]}
    assert plaid_connections[IBKR]["status"] == "removed"
    assert not [
        p
        for p in info["positions"]
        if p["provider"] == "plaid" and p["institution"] == "Interactive Brokers"
    ]
