"""Activity history and income: synced from both providers through the SDKs, stored in SQL,
served as pages and period sums. SQLite and Postgres.

The app's clock starts at the emulator's now and then moves only when a test says so, so
the emulator's 24 months of history and the app's sync window agree. Expected figures are
computed here from ``sandbox.activity`` (the provider-neutral history the emulator
renders) and the rates table as stored, never copied from an answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.errors import InvalidInput
from sandbox import activity, data
from sandbox.plaid.transactions import transaction_id
from services.models import ActivityRow, FxRate
from tests.conftest import FakeClock, make_services

PLAID_TX = "plaid /investments/transactions/get"
SNAP_ACTIVITIES = "snaptrade /accounts/{accountId}/activities"
SCHWAB = "schwab-individual"
MERRILL = "merrill-cma"
IBKR = "ibkr-individual"
# Which provider's copy of the IBKR history counts (PROVIDER_PRIORITY's first).
COUNTED_UNDER = "snaptrade"


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock starts at the emulator's own now (SnapTrade's request signatures are
    checked against it), so the emulator's "today" and its 24 months are the app's."""
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    yield built
    built.close()


def stored_count(hub: Any) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ActivityRow)).scalar_one()


def usd_per(hub: Any, currency: str, on: date) -> float:
    """USD per unit of ``currency`` at the stored rates newest on or before ``on``."""

    def per_euro(code: str) -> float:
        if code == "EUR":
            return 1.0
        with hub.engine.connect() as conn:
            value = conn.execute(
                select(FxRate.per_euro)
                .where(FxRate.currency == code, FxRate.rate_date <= on)
                .order_by(FxRate.rate_date.desc())
                .limit(1)
            ).scalar_one()
        return float(value)

    return 1.0 if currency == "USD" else per_euro("USD") / per_euro(currency)


def seeded(kind: str, start: date, end: date, today: date) -> list[activity.Activity]:
    """The emulator's activities of ``kind`` in the span, every account once."""
    return [
        a
        for account in data.ALL_ACCOUNTS
        for a in activity.activities_for(account, today)
        if a.kind == kind and start <= a.trade_date <= end
    ]


# --- income ------------------------------------------------------------------------------------


def test_income_for_the_last_full_year_equals_the_seeded_dividends(
    hub: Any, clock: FakeClock
) -> None:
    today = clock().date()
    report = hub.activities.income("last_year")
    year = today.year - 1
    start, end = date(year, 1, 1), date(year, 12, 31)
    assert report["period"] == {"name": "last_year", "start": str(start), "end": str(end)}

    dividends = seeded("dividend", start, end, today)
    native: dict[str, float] = defaultdict(float)
    for a in dividends:
        native[a.currency] += a.amount
    assert set(native) == {"USD", "EUR"}  # the foreign dividend is in the year
    assert report["totals"]["dividends"]["native"] == pytest.approx(native, abs=0.01)
    # Each EUR dividend at the rate of its own date, not one rate for the year.
    in_usd = sum(a.amount * usd_per(hub, a.currency, a.trade_date) for a in dividends)
    assert report["totals"]["dividends"]["base"] == pytest.approx(in_usd, abs=0.02)
    eur_dates = {a.trade_date for a in dividends if a.currency == "EUR"}
    assert len({usd_per(hub, "EUR", d) for d in eur_dates}) == len(eur_dates) > 1
    [eur] = report["fx"]["rates"]
    assert eur["pair"] == "EUR/USD" and eur["conversions"] == len(
        [a for a in dividends if a.currency == "EUR"]
    )
    interest = sum(a.amount for a in seeded("interest", start, end, today))
    fees = -sum(a.amount for a in seeded("fee", start, end, today))
    assert report["totals"]["interest"]["base"] == pytest.approx(interest, abs=0.01)
    assert report["totals"]["fees"]["base"] == pytest.approx(fees, abs=0.01)
    # By month adds up to the year.
    assert sum(m["dividends"] for m in report["by_month"]) == pytest.approx(in_usd, abs=0.05)
    # Interactive Brokers, on both providers, counted once.
    assert report["counted_once"][0]["institution"] == "Interactive Brokers"
    ibkr = [a for a in report["by_account"] if a["institution"] == "Interactive Brokers"]
    providers = {a["provider"] for a in ibkr}
    assert providers == {COUNTED_UNDER}


def test_fees_last_quarter_include_the_commissions(hub: Any, clock: FakeClock) -> None:
    today = clock().date()
    report = hub.activities.income("last_quarter")
    start, end = (
        date.fromisoformat(report["period"]["start"]),
        date.fromisoformat(report["period"]["end"]),
    )
    assert end < today and (end + timedelta(days=1)).day == 1 and start.day == 1
    trades = [a for kind in ("buy", "sell") for a in seeded(kind, start, end, today)]
    commissions = sum(a.fee for a in trades)
    assert report["totals"]["commissions"]["base"] == pytest.approx(commissions, abs=0.01)


# --- syncing -----------------------------------------------------------------------------------


def test_a_second_sync_of_an_unchanged_account_makes_one_call_and_adds_nothing(
    hub: Any, emulator: Any
) -> None:
    hub.position_views.answer("summary")  # the accounts are known from the position cache
    first = hub.activities.activities(limit=500)
    assert first["total"] > 0
    before = stored_count(hub)
    emulator.controls.reset_counts()
    outcome = hub.activities.sync_now()
    assert outcome["ok"] is True
    # One call per Plaid Item and one per SnapTrade account: nothing listed, nothing paged.
    assert emulator.controls.calls(PLAID_TX) == len(data.PLAID_ITEM_IDS)
    assert emulator.controls.calls(SNAP_ACTIVITIES) == len(data.SNAPTRADE_ACCOUNT_IDS)
    assert emulator.controls.calls() == len(data.PLAID_ITEM_IDS) + len(data.SNAPTRADE_ACCOUNT_IDS)
    assert stored_count(hub) == before


def test_a_read_within_the_lifetime_calls_no_provider(hub: Any, emulator: Any) -> None:
    hub.activities.activities()
    emulator.controls.reset_counts()
    hub.activities.activities(type="dividend")
    hub.activities.income("this_year")
    assert emulator.controls.calls() == 0


def test_a_correction_inside_the_lookback_window_replaces_the_old_row(
    hub: Any, emulator: Any, clock: FakeClock
) -> None:
    hub.activities.activities()
    window_start = clock().date() - timedelta(days=hub.settings.activity_lookback_days)
    recent = [a for a in emulator.controls.list_activities(SCHWAB) if a.trade_date > window_start]
    corrected, vanished = recent[-1], recent[-2]
    emulator.controls.correct_activity(
        SCHWAB, corrected.id, amount=corrected.amount + 10, new_id="corrected-1"
    )
    emulator.controls.remove_activity(SCHWAB, vanished.id)
    clock.advance(hours=25)  # past the lifetime: the next read syncs

    answer = hub.activities.activities(start_date=str(window_start), limit=500)
    ids = {a["activity_id"]: a for a in answer["activities"]}
    assert corrected.id not in ids and vanished.id not in ids
    assert ids["corrected-1"]["amount"] == pytest.approx(corrected.amount + 10)


def stored_ids(hub: Any, provider: str, activity_id: str) -> list[tuple[str, date]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            select(ActivityRow.activity_id, ActivityRow.trade_date).where(
                ActivityRow.provider == provider, ActivityRow.activity_id == activity_id
            )
        ).all()
    return [(row.activity_id, row.trade_date) for row in rows]


def provider_id(provider: str, account: str, activity_id: str) -> str:
    """The id ``provider`` gives the emulator's activity (Plaid derives its own)."""
    if provider == "plaid":
        return transaction_id(data.PLAID_ACCOUNT_IDS[account], activity_id)
    return activity_id


@pytest.mark.parametrize(("account", "provider"), [(SCHWAB, "snaptrade"), (MERRILL, "plaid")])
def test_an_activity_re_dated_from_before_the_window_into_it_is_stored_once(
    hub: Any, emulator: Any, clock: FakeClock, account: str, provider: str
) -> None:
    hub.activities.activities()  # the first sync stores all 24 months
    window_start = clock().date() - timedelta(days=hub.settings.activity_lookback_days)
    old = [a for a in emulator.controls.list_activities(account) if a.trade_date < window_start]
    moved = old[len(old) // 2]
    new_day = window_start + timedelta(days=1)
    emulator.controls.correct_activity(account, moved.id, trade_date=new_day)
    before = stored_count(hub)
    clock.advance(hours=25)  # past the lifetime: the next read syncs the window only

    hub.activities.activities()
    stored = provider_id(provider, account, moved.id)
    # The copy stored on the old day, outside the window replaced, goes with the new one.
    assert stored_ids(hub, provider, stored) == [(stored, new_day)]
    assert stored_count(hub) == before


@pytest.mark.parametrize(("account", "provider"), [(SCHWAB, "snaptrade"), (MERRILL, "plaid")])
def test_an_activity_repeated_within_one_answer_is_stored_once(
    hub: Any, emulator: Any, account: str, provider: str
) -> None:
    served = emulator.controls.list_activities(account)
    repeated = served[len(served) // 2]
    emulator.controls.repeat_activity(account, repeated.id)

    assert hub.activities.sync_now()["ok"] is True
    stored = provider_id(provider, account, repeated.id)
    assert stored_ids(hub, provider, stored) == [(stored, repeated.trade_date)]


def test_a_failed_sync_keeps_the_stored_history(hub: Any, emulator: Any) -> None:
    hub.activities.activities()
    before = stored_count(hub)
    emulator.controls.fail(SNAP_ACTIVITIES, "503")
    outcome = hub.activities.sync_now()
    assert outcome["ok"] is False and "snaptrade" in outcome["errors"]
    assert stored_count(hub) == before
    info = hub.activities.activities()["cache_info"]["snaptrade"]
    assert info["stale"] is True and info["error"]
    emulator.controls.clear()


def test_an_empty_answer_keeps_the_window_it_would_replace(hub: Any, emulator: Any) -> None:
    hub.activities.activities()
    before = stored_count(hub)
    for a in emulator.controls.list_activities(SCHWAB):
        emulator.controls.remove_activity(SCHWAB, a.id)
    hub.activities.sync_now()
    assert stored_count(hub) == before


# --- pages and bad input -----------------------------------------------------------------------


def test_pages_cover_every_activity_once_and_filters_apply(hub: Any, clock: FakeClock) -> None:
    everything = hub.activities.activities(limit=500)
    seen, answer = [], hub.activities.activities(limit=37)
    while True:
        seen += [a["activity_id"] for a in answer["activities"]]
        if not answer["truncated"]:
            break
        answer = hub.activities.activities(limit=37, cursor=answer["next_cursor"])
    assert len(seen) == len(set(seen)) == everything["total"]
    dividends = hub.activities.activities(type="dividend", ticker="aapl", limit=500)
    assert dividends["total"] > 0
    assert {(a["type"], a["ticker"]) for a in dividends["activities"]} == {("dividend", "AAPL")}
    first = hub.activities.activities(limit=5)
    with pytest.raises(InvalidInput, match="start again"):
        hub.activities.activities(type="fee", limit=5, cursor=first["next_cursor"])


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"start_date": "2026-05-01", "end_date": "2026-04-01"}, "start_date"),
        ({"type": "dividends"}, "type"),
        ({"ticker": "A" * 30}, "ticker"),
        ({"account_id": "a\x00b"}, "account_id"),
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_arguments_are_refused_before_any_provider_call(
    hub: Any, emulator: Any, arguments: dict[str, Any], field: str
) -> None:
    emulator.controls.reset_counts()
    with pytest.raises(InvalidInput) as refused:
        hub.activities.activities(**arguments)
    assert refused.value.field == field
    assert emulator.controls.calls() == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"period": "fortnight"}, "period"),
        ({"period": "last_year", "start_date": "2025-01-01"}, "period"),
        ({"start_date": "2025-02-30"}, "start_date"),
    ],
)
def test_bad_income_periods_are_refused(
    hub: Any, emulator: Any, arguments: dict[str, Any], field: str
) -> None:
    emulator.controls.reset_counts()
    with pytest.raises(InvalidInput) as refused:
        hub.activities.income(**arguments)
    assert refused.value.field == field
    assert emulator.controls.calls() == 0


def test_a_date_range_is_a_period_too(hub: Any, clock: FakeClock) -> None:
    today = clock().date()
    start, end = today - timedelta(days=90), today - timedelta(days=1)
    report = hub.activities.income(start_date=str(start), end_date=str(end))
    assert report["period"]["name"] == "custom"
    expected = sum(a.amount for a in seeded("interest", start, end, today))
    assert report["totals"]["interest"]["native"]["USD"] == pytest.approx(expected, abs=0.01)


def test_income_kept_for_a_generation_moves_with_a_sync(
    hub: Any, emulator: Any, clock: FakeClock
) -> None:
    span = {
        "start_date": str(clock().date() - timedelta(days=300)),
        "end_date": str(clock().date()),
    }
    before = hub.activities.income(**span)
    assert hub.activities.income(**span) == before  # served again, unchanged
    window_start = clock().date() - timedelta(days=hub.settings.activity_lookback_days)
    dividend = next(
        a
        for a in reversed(emulator.controls.list_activities(SCHWAB))
        if a.kind == "dividend" and a.trade_date > window_start
    )
    emulator.controls.correct_activity(SCHWAB, dividend.id, amount=dividend.amount + 100)
    clock.advance(hours=25)
    after = hub.activities.income(**span)
    gained = after["totals"]["dividends"]["base"] - before["totals"]["dividends"]["base"]
    assert gained == pytest.approx(100, abs=0.01)
