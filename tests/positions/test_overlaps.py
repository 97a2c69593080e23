"""An institution on both providers is reported and counted once in every total."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import data as demo_data


def ibkr_usd_value() -> float:
    ibkr = demo_data.INSTITUTIONS["interactive-brokers"]
    return round(
        sum(h.value for account in ibkr.accounts for h in account.holdings if h.currency == "USD")
        + sum(a for account in ibkr.accounts for c, a in account.cash if c == "USD"),
        2,
    )


def usd_total_of(rows: list[dict[str, Any]]) -> float:
    return round(sum(r["market_value"] or 0 for r in rows if r["currency"] == "USD"), 2)


def test_ibkr_is_reported_as_an_overlap_and_counted_once(services: Any) -> None:
    full = services.position_views.answer("full")
    (overlap,) = full["overlaps"]
    assert overlap["institution"] == "Interactive Brokers"
    assert overlap["providers"] == ["snaptrade", "plaid"]
    assert overlap["counted_under"] == "snaptrade"
    assert overlap["accounts"] and all(a["matched"] for a in overlap["accounts"])
    assert overlap["accounts"][0]["mask"] == demo_data.IBKR_ACCOUNT_MASK
    assert (
        "migrate-institution interactive-brokers --from plaid --to snaptrade"
        in (overlap["resolve_with"])
    )
    every_row = usd_total_of(full["positions"])
    assert full["totals"]["USD"] == pytest.approx(every_row - ibkr_usd_value(), abs=0.01)
    duplicated = [p for p in full["positions"] if p["duplicate"]]
    assert {p["provider"] for p in duplicated} == {"plaid"}
    assert {p["institution"] for p in duplicated} == {"Interactive Brokers"}


@pytest.mark.parametrize("format", ["summary", "by_account", "list"])
def test_every_format_counts_the_overlap_once(services: Any, format: str) -> None:
    full = services.position_views.answer("full")
    view = services.position_views.answer(format)
    totals = view["summary"]["totals"] if format == "summary" else view["totals"]
    assert totals == full["totals"]
    assert view["overlaps"] == full["overlaps"]
    if format == "summary":
        assert view["summary"]["by_institution"]["Interactive Brokers"]["USD"] == pytest.approx(
            ibkr_usd_value(), abs=0.01
        )
    if format == "by_account":
        plaid = next(p for p in view["providers"] if p["provider"] == "plaid")
        ibkr = next(i for i in plaid["institutions"] if i["institution"] == "Interactive Brokers")
        assert all(account["duplicate"] for account in ibkr["accounts"])


def test_provider_priority_decides_which_copy_counts(
    tmp_path: Any, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    from tests.conftest import make_services

    services = make_services(
        tmp_path, sqlite_url, emulator, clock, PROVIDER_PRIORITY="plaid,snaptrade"
    )
    full = services.position_views.answer("full")
    assert full["overlaps"][0]["counted_under"] == "plaid"
    assert {p["provider"] for p in full["positions"] if p["duplicate"]} == {"snaptrade"}
