"""An oversized argument comes back in an error as a short prefix only, on every surface.

A 100 kB ``account_id`` or ``preview_id`` used to be echoed whole. The one shared error
boundary (``core.errors.bounded_message``, used by ``to_dict()``, the MCP boundary, the
web's error handlers and the CLI's error line) now cuts any long quoted value or unbroken
run to its first 40 characters and "…", and caps a message at 500 characters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.output import run_cli
from core.errors import NotFound, bounded_message
from sandbox import data
from tests.conftest import FakeClock, make_services
from tests.security.test_bad_input import mcp_session
from tests.web_fixtures import log_in, logged_in_client, make_app

HUGE = "A" * 100_000
SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
PREFIX = "A" * 40 + "…"


@pytest.fixture
def trading_hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    """Trading on, so execute_trade gets as far as looking the preview up."""
    built = make_services(tmp_path, sqlite_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


def assert_short_prefix_only(text: str) -> None:
    assert PREFIX in text
    assert "A" * 41 not in text
    assert len(text) < 700


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("preview_trade", {"account_id": HUGE, "ticker": "AAPL", "side": "BUY", "quantity": 1}),
        (
            "preview_trade",
            {"account_id": SCHWAB, "ticker": HUGE, "side": "BUY", "quantity": 1},
        ),
        ("execute_trade", {"preview_id": HUGE}),
    ],
    ids=["account_id", "ticker", "preview_id"],
)
def test_a_tool_error_quotes_a_short_prefix_of_an_oversized_argument(
    trading_hub: Any, tool: str, arguments: dict[str, Any]
) -> None:
    with mcp_session(trading_hub) as call:
        result = call(tool, arguments)

    assert result.is_error
    assert_short_prefix_only(" ".join(getattr(item, "text", "") for item in result.content))


def test_a_json_error_quotes_a_short_prefix_of_an_oversized_argument(services: Any) -> None:
    app = make_app(services)

    @app.get("/api/oversized-echo")
    def echo() -> Any:  # a route whose service quotes what it was given, whole
        raise NotFound(f"no SnapTrade account {HUGE!r}")

    client = app.test_client()
    log_in(client, services)
    response = client.get("/api/oversized-echo")

    assert response.status_code == 404
    assert_short_prefix_only(response.get_json()["error"]["message"])


def test_the_real_json_routes_quote_short_prefixes_too(services: Any) -> None:
    client = logged_in_client(services)
    for query in (f"format={HUGE}", f"cursor={HUGE}", f"refresh_provider={HUGE}", f"limit={HUGE}"):
        response = client.get(f"/api/positions?{query}")
        assert response.status_code == 400, query[:20]
        message = response.get_json()["error"]["message"]
        assert "A" * 61 not in message and len(message) < 700, query[:20]


def test_a_cli_error_quotes_a_short_prefix_of_an_oversized_argument(services: Any) -> None:
    app = make_app(services)

    @app.cli.command("preview-oversized")
    def preview_oversized() -> None:  # the trading service quotes the account id it was given
        run_cli(lambda: services.trading.preview_order(HUGE, "AAPL", "BUY", 1, requested_via="cli"))

    result = app.test_cli_runner().invoke(args=["preview-oversized"])

    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert_short_prefix_only(json.loads(line)["error"]["message"])


def test_a_message_is_capped_whatever_its_shape() -> None:
    assert len(bounded_message("word " * 10_000)) == 500
    assert bounded_message("short 'and' sweet") == "short 'and' sweet"
    assert bounded_message(f'no "{HUGE}" here') == f'no "{PREFIX}" here'
