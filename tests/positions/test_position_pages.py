"""Cached reads at the cost of one small query, in pages a client can take.

Views are built once per cache generation and checked against the database on every
read; ``full`` and ``list`` answer in pages whose cursor names the generation it was
cut from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import event

from core.errors import InvalidInput
from core.normalized import NormalizedPosition
from services.connections.registry import ConnectionRegistry
from services.positions.fetchers import ProviderFetch
from services.positions.formats import ACCOUNTS_SHOWN, POSITIONS_SHOWN, json_position
from services.positions.service import PositionService
from services.positions.views import PAGE_SIZES, POSITIONS_PER_ACCOUNT, PositionViews
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class SyntheticFetcher:
    """A provider with ``count`` positions spread over a few accounts (a large portfolio)."""

    def __init__(self, provider: str, count: int, *, accounts: int = 7) -> None:
        self.provider, self.count, self.accounts = provider, count, accounts
        self.calls = 0

    def __call__(self, *, automatic: bool) -> ProviderFetch:
        self.calls += 1
        return ProviderFetch(
            positions=[
                NormalizedPosition(
                    user_email="someone@example.com",
                    provider=self.provider,
                    institution=f"{self.provider} brokerage",
                    account_id=f"{self.provider}-account-{i % self.accounts}",
                    account_name=f"Account {i % self.accounts}",
                    account_type="brokerage",
                    account_mask=f"{i % self.accounts:04d}",
                    ticker=f"T{i:05d}",
                    name=f"Security {i}",
                    security_type="equity",
                    quantity=float(i % 17 + 1),
                    price=float(i % 89 + 1),
                    market_value=float((i % 17 + 1) * (i % 89 + 1)),
                    cost_basis=None,
                    currency="USD",
                    as_of=datetime(2026, 11, 2, tzinfo=UTC),
                )
                for i in range(self.count)
            ],
            sources=1,
        )


def large_portfolio(
    services: Any, clock: FakeClock, count: int, *, accounts: int = 7
) -> PositionViews:
    positions = PositionService(
        engine=services.engine,
        user_email="someone@example.com",
        fetchers={"plaid": SyntheticFetcher("plaid", count, accounts=accounts)},
        clock=clock,
    )
    return PositionViews(positions, ConnectionRegistry(services.engine, clock), services.fx, "USD")


def statements_on(engine: Any) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(str(args[2])))
    return seen


def all_pages(views: PositionViews, format: str, limit: int | None = None) -> list[dict]:
    answer = views.answer(format, limit=limit)
    pages = [answer]
    while answer["truncated"]:
        answer = views.answer(format, limit=limit, cursor=answer["next_cursor"])
        pages.append(answer)
    return pages


# --- one query per warm read ---------------------------------------------------------------


@pytest.mark.parametrize("format", ["summary", "full", "by_account", "list"])
def test_a_warm_read_reads_no_position_rows(services: Any, format: str) -> None:
    views = services.position_views
    first = views.answer(format)
    seen = statements_on(services.engine)
    again = views.answer(format)
    first.pop("cache_info"), again.pop("cache_info")  # the first read fetched; this one did not
    assert again == first
    assert not [sql for sql in seen if "FROM positions" in sql], seen
    assert len([sql for sql in seen if "position_snapshots" in sql]) == 1


def test_a_refresh_in_another_process_moves_the_generation_and_the_next_read_serves_it(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> None:
    from tests.conftest import make_services

    hub = make_services(tmp_path, database_url, emulator, clock)
    try:
        before = hub.position_views.answer("full", limit=100)
        ibkr_tsla = [p for p in before["positions"] if p["ticker"] == "TSLA"]
        assert ibkr_tsla, "the demo's IBKR account holds TSLA on both providers"
        emulator.controls.set_units("ibkr-individual", "TSLA", 1.0)
        env = {
            **os.environ,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "PLAID_BASE_URL": emulator.plaid_url,
            "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
            "LOG_LEVEL": "WARNING",
        }
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "from services.composition import build_services;"
                "print(build_services().positions.refresh_provider_positions('snaptrade'))",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert other.returncode == 0, other.stderr
        after = hub.position_views.answer("full", limit=100)
        snaptrade_tsla = [
            p for p in after["positions"] if p["ticker"] == "TSLA" and p["provider"] == "snaptrade"
        ]
        assert [p["quantity"] for p in snaptrade_tsla] == [1.0]
        # The old page's cursor belongs to the old generation.
        if before["next_cursor"]:
            with pytest.raises(InvalidInput, match="start again"):
                hub.position_views.answer("full", limit=100, cursor=before["next_cursor"])
    finally:
        hub.close()


# --- pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("format", "limit"), [("full", None), ("full", 7), ("list", None)])
def test_the_pages_of_one_generation_are_exactly_its_cached_rows_each_once(
    services: Any, clock: FakeClock, format: str, limit: int | None
) -> None:
    views = large_portfolio(services, clock, 523)
    pages = all_pages(views, format, limit)
    size = limit or PAGE_SIZES[format].default
    assert [len(p["positions"]) for p in pages[:-1]] == [size] * (len(pages) - 1)
    assert pages[-1]["truncated"] is False and pages[-1]["next_cursor"] is None
    assert {p["total"] for p in pages} == {523}
    rows, _ = views.positions.read_cached()
    if format == "full":
        cached = [{**json_position(row), "duplicate": False} for row in rows]
    else:
        cached = [
            {
                "ticker": row["ticker"],
                "quantity": row["quantity"],
                "value": row["market_value"],
                "currency": row["currency"],
            }
            for row in rows
        ]
    # The cached fields as stored (the base-currency values and gains beside them are
    # checked in test_portfolio_values.py).
    fields = set(cached[0])
    served = Counter(
        json.dumps({k: row[k] for k in fields}, sort_keys=True)
        for answer in pages
        for row in answer["positions"]
    )
    assert served == Counter(json.dumps(row, sort_keys=True) for row in cached)


def test_a_cursor_from_an_older_generation_is_refused(services: Any, clock: FakeClock) -> None:
    views = large_portfolio(services, clock, 120)
    first = views.answer("full")
    assert first["truncated"] is True
    views.positions.refresh_provider_positions("plaid")
    with pytest.raises(InvalidInput) as refused:
        views.answer("full", cursor=first["next_cursor"])
    assert refused.value.field == "cursor"
    assert "start again" in refused.value.message
    # Starting again works, and its cursor does.
    again = views.answer("full")
    assert views.answer("full", cursor=again["next_cursor"])["positions"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"format": "full", "limit": 0}, "limit"),
        ({"format": "full", "limit": PAGE_SIZES["full"].maximum + 1}, "limit"),
        ({"format": "list", "limit": True}, "limit"),
        ({"format": "full", "limit": "10"}, "limit"),
        ({"format": "full", "cursor": "not-a-cursor"}, "cursor"),
        ({"format": "full", "cursor": "x" * 5000}, "cursor"),
        ({"format": "summary", "limit": 10}, "limit"),
        ({"format": "by_account", "cursor": "abc"}, "cursor"),
    ],
)
def test_bad_paging_arguments_are_refused_naming_what_is_allowed(
    services: Any, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.position_views.answer(**arguments)
    assert refused.value.field == field
    assert len(refused.value.message) < 300


def test_a_cursor_of_one_format_is_refused_by_another(services: Any, clock: FakeClock) -> None:
    views = large_portfolio(services, clock, 600)
    listed = views.answer("list")
    with pytest.raises(InvalidInput, match="not a cursor of full"):
        views.answer("full", cursor=listed["next_cursor"])


# --- bounded answers ----------------------------------------------------------------------------


def test_by_account_shows_each_accounts_largest_positions_and_counts_the_rest(
    services: Any, clock: FakeClock
) -> None:
    views = large_portfolio(services, clock, 700)
    answer = views.answer("by_account")
    accounts = [
        account
        for provider in answer["providers"]
        for institution in provider["institutions"]
        for account in institution["accounts"]
    ]
    rows, _ = views.positions.read_cached()
    for account in accounts:
        mine = [r for r in rows if r["account_id"] == account["account_id"]]
        largest = sorted((r["market_value"] for r in mine), reverse=True)[:POSITIONS_PER_ACCOUNT]
        assert [p["market_value"] for p in account["positions"]] == largest
        assert account["position_count"] == len(mine)
        assert account["more_positions"] == len(mine) - POSITIONS_PER_ACCOUNT
        assert account["totals"] == {"USD": round(sum(r["market_value"] for r in mine), 2)}


@pytest.mark.parametrize("accounts", [7, 300])
@pytest.mark.parametrize("format", ["summary", "by_account", "full", "list", "holdings"])
def test_no_answer_is_over_the_page_limit_at_any_size(
    services: Any, clock: FakeClock, format: str, accounts: int
) -> None:
    views = large_portfolio(services, clock, 5000, accounts=accounts)
    limit = PAGE_SIZES[format].maximum if format in PAGE_SIZES else None
    size = len(json.dumps(views.answer(format, limit=limit)))
    # About 25,000 tokens is what MCP clients take; ~4 bytes a token leaves room to spare.
    assert size < 60_000, size


def test_by_account_lists_the_largest_accounts_and_counts_the_others(
    services: Any, clock: FakeClock
) -> None:
    views = large_portfolio(services, clock, 3000, accounts=300)
    [provider] = views.answer("by_account")["providers"]
    [institution] = provider["institutions"]
    listed = institution["accounts"]
    assert len(listed) == ACCOUNTS_SHOWN
    assert institution["more_accounts"] == 300 - ACCOUNTS_SHOWN
    assert sum(len(account["positions"]) for account in listed) <= POSITIONS_SHOWN
    rows, _ = views.positions.read_cached()
    value: dict[str, float] = {}
    for row in rows:
        value[row["account_id"]] = value.get(row["account_id"], 0.0) + row["market_value"]
    largest = sorted(value.values(), reverse=True)[:ACCOUNTS_SHOWN]
    assert sorted((value[a["account_id"]] for a in listed), reverse=True) == largest
    # Every total still counts every position, listed or not.
    assert institution["totals"] == {"USD": round(sum(value.values()), 2)}


def test_the_tool_schema_documents_limit_and_cursor(services: Any) -> None:
    import mcp

    from mcp_server import build_server

    async def tools() -> Any:
        async with mcp.Client(build_server(services)) as client:
            return await client.list_tools()

    tool = next(t for t in anyio.run(tools).tools if t.name == "get_positions")
    properties = tool.input_schema["properties"]
    assert "next_cursor" in properties["cursor"]["description"]
    assert "at most 100" in properties["limit"]["description"]
    assert "cursor=next_cursor" in tool.description
