"""The emulator's 24 months of activity history: Plaid's ``/investments/transactions/get`` and
SnapTrade's ``GET /accounts/{accountId}/activities``, through the real SDKs over loopback.

Expectations are derived here, independently: replaying the served buys and sells with the
average-cost method must give every seeded holding's quantity and cost basis, and the cash
flows the seeded cash. The history moves with the emulator's clock ("today"), never the
wall clock of the test; no test sleeps.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from plaid.model.investments_transactions_get_request import InvestmentsTransactionsGetRequest
from plaid.model.investments_transactions_get_request_options import (
    InvestmentsTransactionsGetRequestOptions,
)
from snaptrade_client import ApiException as SnapTradeApiException

from sandbox import data, demo
from sandbox.activity import (
    Activity,
    activities_by_account,
    activities_for,
    history_window,
    today_of,
)
from sandbox.faults import Controls
from sandbox.plaid.transactions import transaction_id
from sandbox.server import EmulatorHandle, start_emulator
from sandbox.snaptrade_api import request_signature
from tests.emulator_fixtures import (
    DEMO_USER,
    OffsetClock,
    PlaidModels,
    SpecValidator,
    WireRecorder,
    plaid_client,
    snaptrade_client,
    snaptrade_spec,
)

PLAID_PATH = "/investments/transactions/get"
SNAP_PATH = "/accounts/{accountId}/activities"
ACCOUNTS = {a.key: a for a in data.ALL_ACCOUNTS}
PLAID_TOKEN_OF = {
    a.key: demo.PLAID_ACCESS_TOKENS[slug]
    for slug, institution in data.PLAID_INSTITUTIONS.items()
    for a in institution.accounts
}
IBKR = "ibkr-individual"
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
# The dividend payers among the seeded tickers (the brief's list), paid quarterly in USD.
QUARTERLY_PAYERS = {
    *("AAPL", "MSFT", "JNJ", "KO", "JPM", "PG", "VOO", "QQQ", "VTI", "BND", "SCHD", "SPY"),
    *("VEA", "IEF", "SCHB", "SCHX", "V", "HD", "COST", "SCHW", "VTSAX", "FXAIX", "SWPPX"),
}
MONTHLY_PAYERS = {"VMFXX", "SWVXX"}
FLOAT_SLACK = 1e-6


@dataclass(frozen=True)
class Row:
    """One served activity, in the account's sign convention, whichever provider sent it."""

    id: str
    day: date
    kind: str
    ticker: str | None
    quantity: float | None
    price: float | None
    amount: float
    fee: float
    currency: str


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def emulator(clock: OffsetClock) -> Iterator[EmulatorHandle]:
    with start_emulator(clock=clock) as handle:
        yield handle


@pytest.fixture
def controls(emulator: EmulatorHandle) -> Controls:
    assert emulator.controls is not None
    return emulator.controls


@functools.cache
def _models() -> PlaidModels:
    return PlaidModels()


@functools.cache
def _spec() -> SpecValidator:
    return snaptrade_spec()


# --- reading both providers -----------------------------------------------------------

PLAID_KINDS = {
    ("buy", "buy"): "buy",
    ("sell", "sell"): "sell",
    ("cash", "dividend"): "dividend",
    ("cash", "interest"): "interest",
    ("fee", "account fee"): "fee",
    ("cash", "deposit"): "deposit",
    ("cash", "withdrawal"): "withdrawal",
}
SNAP_KINDS = {
    "BUY": "buy",
    "SELL": "sell",
    "DIVIDEND": "dividend",
    "INTEREST": "interest",
    "FEE": "fee",
    "CONTRIBUTION": "deposit",
    "WITHDRAWAL": "withdrawal",
}


def plaid_page(
    handle: EmulatorHandle,
    token: str,
    start: date = date(2000, 1, 1),
    end: date = date(2100, 1, 1),
    **options: Any,
) -> dict[str, Any]:
    """One answer of /investments/transactions/get, once it fits the SDK's models."""
    client = plaid_client(handle)
    wire = WireRecorder.on_plaid(client)
    client.investments_transactions_get(
        InvestmentsTransactionsGetRequest(
            access_token=token,
            start_date=start,
            end_date=end,
            options=InvestmentsTransactionsGetRequestOptions(**options),
        )
    )
    answer = wire.last_json()
    problems = _models().answer_problems(PLAID_PATH, 200, answer)
    assert not problems, "\n".join(problems)
    return answer


def plaid_rows(answer: dict[str, Any], account_key: str | None = None) -> list[Row]:
    tickers = {s["security_id"]: s["ticker_symbol"] for s in answer["securities"]}
    rows = []
    for t in answer["investment_transactions"]:
        if account_key is not None and t["account_id"] != data.PLAID_ACCOUNT_IDS[account_key]:
            continue
        kind = PLAID_KINDS[(t["type"], t["subtype"])]
        trade = kind in ("buy", "sell")
        rows.append(
            Row(
                id=t["investment_transaction_id"],
                day=date.fromisoformat(t["date"]),
                kind=kind,
                ticker=tickers[t["security_id"]] if t["security_id"] else None,
                quantity=abs(t["quantity"]) if trade else None,
                price=t["price"] if trade else None,
                amount=-t["amount"],  # Plaid: positive = cash debited
                fee=t["fees"],
                currency=t["iso_currency_code"],
            )
        )
    return rows


def plaid_history(
    handle: EmulatorHandle, account_key: str, start: date = date(2000, 1, 1), **options: Any
) -> list[Row]:
    """Every transaction of one account, all pages, oldest first."""
    rows: list[Row] = []
    offset = 0
    while True:
        answer = plaid_page(
            handle,
            PLAID_TOKEN_OF[account_key],
            start,
            account_ids=[data.PLAID_ACCOUNT_IDS[account_key]],
            count=200,
            offset=offset,
            **options,
        )
        rows.extend(plaid_rows(answer))
        offset += 200
        if offset >= answer["total_investment_transactions"]:
            return rows[::-1]


def snap_page(handle: EmulatorHandle, account_key: str, **params: Any) -> dict[str, Any]:
    """One answer of GET /accounts/{accountId}/activities, once it fits SnapTrade's spec."""
    client = snaptrade_client(handle)
    wire = WireRecorder.on_snaptrade(client)
    client.account_information.get_account_activities(
        account_id=data.SNAPTRADE_ACCOUNT_IDS[account_key], **params, **DEMO_USER
    )
    answer = wire.last_json()
    _spec().validate("get", SNAP_PATH, 200, answer)
    return answer


def snap_rows(answer: dict[str, Any]) -> list[Row]:
    rows = []
    for a in answer["data"]:
        kind = SNAP_KINDS[a["type"]]
        trade = kind in ("buy", "sell")
        rows.append(
            Row(
                id=a["id"],
                day=date.fromisoformat(a["trade_date"][:10]),
                kind=kind,
                ticker=a["symbol"]["symbol"] if a["symbol"] else None,
                quantity=a["units"] if trade else None,
                price=a["price"] if trade else None,
                amount=a["amount"],
                fee=a["fee"],
                currency=a["currency"]["code"],
            )
        )
    return rows


def snap_history(handle: EmulatorHandle, account_key: str) -> list[Row]:
    """Every activity of one account (one page holds them all), oldest first."""
    answer = snap_page(handle, account_key)
    assert answer["pagination"]["total"] == len(answer["data"])
    return snap_rows(answer)[::-1]


def rows_of(activities: Iterable[Activity]) -> list[Row]:
    return [
        Row(
            a.id,
            a.trade_date,
            a.kind,
            a.ticker,
            a.quantity,
            a.price,
            a.amount,
            a.fee,
            a.currency,
        )
        for a in activities
    ]


def signed_get(handle: EmulatorHandle, path: str, **params: str) -> requests.Response:
    """A signed SnapTrade GET with extra query parameters the SDK would not send as given."""
    query = urlencode(
        params
        | {"userId": demo.SNAPTRADE_USER_ID, "userSecret": demo.SNAPTRADE_USER_SECRET}
        | {"clientId": demo.SNAPTRADE_CLIENT_ID, "timestamp": int(time.time())}
    )
    signature = request_signature(demo.SNAPTRADE_CONSUMER_KEY, path, query, None)
    return requests.get(
        f"{handle.snaptrade_url}{path}?{query}", headers={"Signature": signature}, timeout=5
    )


def plaid_post(handle: EmulatorHandle, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{handle.plaid_url}{PLAID_PATH}",
        json=body,
        headers={"PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID, "PLAID-SECRET": demo.PLAID_SECRET},
        timeout=5,
    )


# --- an independent replay --------------------------------------------------------------


def replay(rows: Iterable[Row]) -> tuple[dict[str, Decimal], dict[str, float], dict[str, float]]:
    """Units (exact) and average-cost basis per ticker, and cash per currency, after ``rows``."""
    units: dict[str, Decimal] = defaultdict(Decimal)
    cost: dict[str, float] = defaultdict(float)
    cash: dict[str, float] = defaultdict(float)
    for row in rows:
        cash[row.currency] += row.amount
        if row.kind == "buy":
            assert row.ticker and row.quantity and row.price
            units[row.ticker] += Decimal(str(row.quantity))
            cost[row.ticker] += row.quantity * row.price
        elif row.kind == "sell":
            assert row.ticker and row.quantity
            held = float(units[row.ticker])
            assert row.quantity <= held + FLOAT_SLACK, f"{row.ticker} sold short on {row.day}"
            cost[row.ticker] -= row.quantity * cost[row.ticker] / held
            units[row.ticker] -= Decimal(str(row.quantity))
    return units, cost, cash


def assert_rebuilds_the_seeded_account(account_key: str, rows: list[Row]) -> None:
    account = ACCOUNTS[account_key]
    units, cost, cash = replay(rows)
    for holding in account.holdings:
        assert units[holding.ticker] == Decimal(str(holding.quantity)), holding.ticker
        assert holding.cost_basis is not None
        assert abs(cost[holding.ticker] - holding.cost_basis) < 0.005, holding.ticker
    assert set(units) == {h.ticker for h in account.holdings}
    for currency, amount in account.cash:
        assert abs(cash[currency] - amount) < 0.005, currency


# --- the generated history --------------------------------------------------------------

TODAYS = [date(2026, 11, 27), date(2025, 1, 1), date(2028, 2, 29), date(2027, 7, 4)]


@pytest.mark.parametrize("today", TODAYS, ids=str)
@pytest.mark.parametrize("account_key", sorted(ACCOUNTS))
def test_replaying_the_history_gives_every_seeded_holding_and_cash_balance(
    account_key: str, today: date
):
    history = activities_for(ACCOUNTS[account_key], today)
    assert_rebuilds_the_seeded_account(account_key, rows_of(history))
    # The cash never goes below zero on the way.
    running: dict[str, float] = defaultdict(float)
    for activity in history:
        running[activity.currency] += activity.amount
        assert running[activity.currency] > -FLOAT_SLACK, activity


@pytest.mark.parametrize("today", TODAYS, ids=str)
def test_the_history_spans_24_months_to_yesterday_oldest_first(today: date):
    for key, history in activities_by_account(today).items():
        days = [a.trade_date for a in history]
        assert days == sorted(days)
        assert days[0] == today - timedelta(days=730)  # the opening deposit
        assert history[0].kind == "deposit"
        assert days[-1] <= today - timedelta(days=1)
        assert len({a.id for a in history}) == len(history), key


def test_the_history_moves_with_today():
    account = ACCOUNTS["merrill-cma"]
    before = activities_for(account, date(2026, 11, 27))
    after = activities_for(account, date(2026, 11, 27) + timedelta(days=100))
    assert after[0].trade_date - before[0].trade_date == timedelta(days=100)
    assert {a.ticker for a in before if a.kind == "buy"} == {
        a.ticker for a in after if a.kind == "buy"
    }
    # The trades move with today; dated on the calendar, an interest payment that both
    # windows hold is the same activity, under the same id.
    buys_before = {a.id for a in before if a.kind == "buy"}
    assert buys_before.isdisjoint({a.id for a in after if a.kind == "buy"})
    interest = {(a.trade_date, a.id) for a in before if a.kind == "interest"}
    assert interest & {(a.trade_date, a.id) for a in after if a.kind == "interest"}
    # The same day gives the same history, ids included (every process agrees).
    assert activities_for(account, date(2026, 11, 27)) == before


def test_the_kinds_of_activity_each_account_has():
    history = activities_by_account(date(2026, 11, 27))
    sold = {(key, a.ticker) for key, acts in history.items() for a in acts if a.kind == "sell"}
    assert {("merrill-cma", "AAPL"), ("schwab-individual", "SCHB")} <= sold
    for key, acts in history.items():
        buys = defaultdict(int)
        for a in acts:
            if a.kind == "buy":
                buys[a.ticker] += 1
        assert all(2 <= n <= 3 for n in buys.values()), (key, buys)
        interest = [a for a in acts if a.kind == "interest"]
        assert 23 <= len(interest) <= 25 and all(a.amount > 0 for a in interest)
        assert all(a.currency == "USD" for a in interest)
        fees = [a for a in acts if a.kind == "fee"]
        if key == "merrill-cma":
            assert 7 <= len(fees) <= 9 and {a.amount for a in fees} == {-25.0}
        else:
            assert not fees
        for a in acts:
            if a.kind in ("buy", "sell"):
                assert a.quantity and a.quantity > 0 and a.price and a.price > 0
                charged = key == IBKR and a.ticker not in MONTHLY_PAYERS
                assert (a.fee > 0) is charged, a
                value = round(a.quantity * a.price, 2)
                expected = -(value + a.fee) if a.kind == "buy" else value - a.fee
                assert math.isclose(a.amount, expected, abs_tol=0.006), a
            else:
                assert a.quantity is None and a.price is None and a.fee == 0
                assert (a.ticker is None) is (a.kind != "dividend")
    withdrawals = [a for acts in history.values() for a in acts if a.kind == "withdrawal"]
    assert [a.account_key for a in withdrawals] == ["schwab-individual"]


def _units_before(acts: list[Activity], ticker: str, day: date) -> Decimal:
    units = Decimal(0)
    for a in acts:
        if a.ticker == ticker and a.trade_date < day and a.kind in ("buy", "sell"):
            step = Decimal(str(a.quantity))
            units += step if a.kind == "buy" else -step
    return units


@pytest.mark.parametrize("today", TODAYS, ids=str)
def test_dividends_pay_a_fixed_rate_on_the_units_held(today: date):
    paid: dict[str, list[Activity]] = defaultdict(list)
    for acts in activities_by_account(today).values():
        for a in acts:
            if a.kind == "dividend":
                assert a.ticker is not None
                paid[a.ticker].append(a)
                units = _units_before(acts, a.ticker, a.trade_date)
                assert units > 0
                paid_rate = a.amount / float(units)
                first = paid[a.ticker][0]
                first_rate = first.amount / float(_units_before(acts, a.ticker, first.trade_date))
                assert abs(paid_rate - first_rate) <= 0.0101 / float(units), a
    assert set(paid) == QUARTERLY_PAYERS | MONTHLY_PAYERS | {"ASML"}
    for ticker, dividends in paid.items():
        gaps = [(b.trade_date - a.trade_date).days for a, b in itertools.pairwise(dividends)]
        low, high, at_least = {
            "ASML": (175, 190, 3),
            **dict.fromkeys(MONTHLY_PAYERS, (26, 35, 20)),
        }.get(ticker, (85, 97, 6))
        assert len(dividends) >= at_least and all(low <= g <= high for g in gaps), ticker


def test_asml_pays_its_dividend_in_eur_into_the_eur_cash():
    acts = activities_for(ACCOUNTS[IBKR], date(2026, 11, 27))
    eur = [a for a in acts if a.currency == "EUR"]
    assert {a.kind for a in eur} == {"deposit", "dividend"}
    dividends = [a for a in eur if a.kind == "dividend"]
    assert len(dividends) >= 3 and {a.ticker for a in dividends} == {"ASML"}
    assert all(a.currency == "USD" for a in acts if a.ticker == "ASML" and a.kind == "buy")
    others = [
        a for k, h in activities_by_account(date(2026, 11, 27)).items() if k != IBKR for a in h
    ]
    assert {a.currency for a in others} == {"USD"}


# --- served by both providers -----------------------------------------------------------


def test_both_providers_serve_histories_that_rebuild_every_seeded_account(
    emulator: EmulatorHandle,
):
    for key in PLAID_TOKEN_OF:
        assert_rebuilds_the_seeded_account(key, plaid_history(emulator, key))
    for key in data.SNAPTRADE_ACCOUNT_IDS:
        assert_rebuilds_the_seeded_account(key, snap_history(emulator, key))


def test_interactive_brokers_is_the_same_history_on_both_providers(
    emulator: EmulatorHandle, controls: Controls
):
    plaid = plaid_history(emulator, IBKR)
    snap = snap_history(emulator, IBKR)
    served = controls.list_activities(IBKR)

    def key(row: Row) -> tuple[Any, ...]:
        return (
            row.day,
            row.kind,
            row.ticker,
            row.quantity,
            row.price,
            row.amount,
            row.fee,
            row.currency,
        )

    assert [key(r) for r in plaid] == [key(r) for r in snap] == [key(r) for r in rows_of(served)]
    assert [r.id for r in snap] == [a.id for a in served]
    account_id = data.PLAID_ACCOUNT_IDS[IBKR]
    assert [r.id for r in plaid] == [transaction_id(account_id, a.id) for a in served]
    eur = [r for r in snap if r.currency == "EUR" and r.kind == "dividend"]
    assert eur and all(r.ticker == "ASML" for r in eur)


def _today(clock: Callable[[], float]) -> date:
    return today_of(clock())


def test_plaid_pages_with_count_and_offset_against_the_total(emulator: EmulatorHandle):
    token = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
    whole = plaid_page(emulator, token, count=500)
    total = whole["total_investment_transactions"]
    assert total == len(whole["investment_transactions"]) > 150  # both Merrill accounts
    assert {t["account_id"] for t in whole["investment_transactions"]} == {
        data.PLAID_ACCOUNT_IDS["merrill-cma"],
        data.PLAID_ACCOUNT_IDS["merrill-ira"],
    }
    days = [t["date"] for t in whole["investment_transactions"]]
    assert days == sorted(days, reverse=True)  # newest first
    pages = [plaid_page(emulator, token, count=40, offset=o) for o in range(0, total + 40, 40)]
    assert {p["total_investment_transactions"] for p in pages} == {total}
    assert [len(p["investment_transactions"]) for p in pages[:-2]] == [40] * (len(pages) - 2)
    assert pages[-1]["investment_transactions"] == []  # past the end
    ids = [t["investment_transaction_id"] for p in pages for t in p["investment_transactions"]]
    assert ids == [t["investment_transaction_id"] for t in whole["investment_transactions"]]
    # The securities are those of the page's transactions, as the holdings render them.
    for page in pages[:-1]:
        used = {t["security_id"] for t in page["investment_transactions"]} - {None}
        assert {s["security_id"] for s in page["securities"]} == used
    default = plaid_page(emulator, token)
    assert len(default["investment_transactions"]) == 100  # Plaid's default count


def test_plaid_account_ids_keep_only_those_accounts(emulator: EmulatorHandle):
    ira = data.PLAID_ACCOUNT_IDS["merrill-ira"]
    answer = plaid_page(
        emulator, demo.PLAID_ACCESS_TOKENS["merrill-lynch"], account_ids=[ira], count=500
    )
    assert [a["account_id"] for a in answer["accounts"]] == [ira]
    assert {t["account_id"] for t in answer["investment_transactions"]} == {ira}


def test_snaptrade_pages_with_offset_and_limit_against_the_total(emulator: EmulatorHandle):
    whole = snap_page(emulator, "schwab-individual")
    total = whole["pagination"]["total"]
    assert whole["pagination"] == {"offset": 0, "limit": 1000, "total": total}
    assert len(whole["data"]) == total > 100
    stamps = [a["trade_date"] for a in whole["data"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first, as SnapTrade documents
    pages = [
        snap_page(emulator, "schwab-individual", offset=o, limit=25)
        for o in range(0, total + 25, 25)
    ]
    assert [p["pagination"] for p in pages] == [
        {"offset": o, "limit": 25, "total": total} for o in range(0, total + 25, 25)
    ]
    assert [a["id"] for p in pages for a in p["data"]] == [a["id"] for a in whole["data"]]
    assert pages[-1]["data"] == []
    capped = snap_page(emulator, "schwab-individual", limit=5000)
    assert capped["pagination"]["limit"] == 1000


def test_date_filters_are_inclusive_on_both_providers(emulator: EmulatorHandle, controls: Controls):
    served = controls.list_activities(IBKR)
    day = next(a.trade_date for a in served if a.kind == "dividend")
    on_the_day = sorted(a.id for a in served if a.trade_date == day)
    snap = snap_page(emulator, IBKR, start_date=day, end_date=day)
    assert sorted(a["id"] for a in snap["data"]) == on_the_day
    plaid = plaid_page(emulator, demo.PLAID_ACCESS_TOKENS["interactive-brokers"], day, day)
    account_id = data.PLAID_ACCOUNT_IDS[IBKR]
    assert sorted(t["investment_transaction_id"] for t in plaid["investment_transactions"]) == (
        sorted(transaction_id(account_id, i) for i in on_the_day)
    )
    # A week: both ends included, nothing outside.
    start, end = day - timedelta(days=3), day + timedelta(days=3)
    week = [a.id for a in served if start <= a.trade_date <= end]
    snap_week = snap_page(emulator, IBKR, start_date=start, end_date=end)
    assert sorted(a["id"] for a in snap_week["data"]) == sorted(week)
    plaid_week = plaid_page(emulator, demo.PLAID_ACCESS_TOKENS["interactive-brokers"], start, end)
    assert plaid_week["total_investment_transactions"] == len(week)


def test_plaid_keeps_24_months_whatever_the_start_date(
    emulator: EmulatorHandle, clock: OffsetClock, controls: Controls
):
    today = _today(clock)
    token = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
    served = controls.list_activities(IBKR)
    early = plaid_page(emulator, token, today - timedelta(days=3000), today, count=500)
    assert early["total_investment_transactions"] == len(served)
    oldest = min(t["date"] for t in early["investment_transactions"])
    assert oldest == (today - timedelta(days=730)).isoformat()
    # Today's activities are not there yet (the history ends yesterday).
    assert plaid_page(emulator, token, today, today)["total_investment_transactions"] == 0


def test_the_snaptrade_type_filter(emulator: EmulatorHandle, controls: Controls):
    trades = snap_page(emulator, IBKR, type="BUY,SELL")
    assert {a["type"] for a in trades["data"]} == {"BUY", "SELL"}
    assert trades["pagination"]["total"] == len(
        [a for a in controls.list_activities(IBKR) if a.kind in ("buy", "sell")]
    )
    withdrawals = snap_page(emulator, "schwab-individual", type="WITHDRAWAL")
    assert [a["amount"] < 0 for a in withdrawals["data"]] == [True]
    contributions = snap_page(emulator, "schwab-individual", type="CONTRIBUTION")
    assert [a["symbol"] for a in contributions["data"]] == [None]
    assert snap_page(emulator, "schwab-individual", type="FEE")["data"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"start_date": "2026-02-30"}, "start_date"),
        ({"end_date": "20260101"}, "end_date"),
        ({"end_date": 20260101}, "end_date"),
        ({"start_date": "2026-06-02", "end_date": "2026-06-01"}, "start_date"),
        ({"options": {"count": 0}}, "count"),
        ({"options": {"count": 501}}, "count"),
        ({"options": {"offset": -1}}, "offset"),
    ],
)
def test_plaid_refuses_bad_dates_and_options(
    emulator: EmulatorHandle, change: dict[str, Any], message: str
):
    body = {
        "access_token": demo.PLAID_ACCESS_TOKENS["interactive-brokers"],
        "start_date": "2026-01-01",
        "end_date": "2026-06-01",
    } | change
    answer = plaid_post(emulator, body)
    assert answer.status_code == 400
    error = answer.json()
    assert (error["error_type"], error["error_code"]) == ("INVALID_REQUEST", "INVALID_FIELD")
    assert message in error["error_message"]
    assert not _models().answer_problems(PLAID_PATH, 400, error)


def test_plaid_asks_for_the_dates_and_a_live_token(emulator: EmulatorHandle):
    token = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
    missing = plaid_post(emulator, {"access_token": token, "start_date": "2026-01-01"})
    assert missing.status_code == 400
    assert missing.json()["error_code"] == "MISSING_FIELDS"
    assert "end_date" in missing.json()["error_message"]
    unknown = plaid_post(
        emulator,
        {"access_token": "access-unknown", "start_date": "2026-01-01", "end_date": "2026-06-01"},
    )
    assert unknown.json()["error_code"] == "INVALID_ACCESS_TOKEN"


@pytest.mark.parametrize(
    "params",
    [
        {"startDate": "2026-13-01"},
        {"endDate": "01/06/2026"},
        {"startDate": "2026-06-02", "endDate": "2026-06-01"},
        {"offset": "-1"},
        {"limit": "0"},
        {"limit": "ten"},
    ],
)
def test_snaptrade_refuses_bad_dates_and_paging(emulator: EmulatorHandle, params: dict[str, str]):
    path = f"/accounts/{data.SNAPTRADE_ACCOUNT_IDS[IBKR]}/activities"
    answer = signed_get(emulator, path, **params)
    assert answer.status_code == 400
    assert set(answer.json()) == {"detail", "status_code", "code"}
    _spec().validate("get", SNAP_PATH, 400, answer.json())


def test_snaptrade_serves_only_the_users_enabled_accounts(
    emulator: EmulatorHandle, controls: Controls
):
    snap = snaptrade_client(emulator)
    with pytest.raises(SnapTradeApiException) as unknown:
        snap.account_information.get_account_activities(
            account_id=data.stable_uuid("not", "an", "account"), **DEMO_USER
        )
    assert unknown.value.status == 404
    controls.disable_connection(IBKR_AUTH)
    with pytest.raises(SnapTradeApiException) as disabled:
        snap_page(emulator, IBKR)
    assert disabled.value.status == 402
    assert disabled.value.body["code"] == "3003"
    assert snap_page(emulator, "schwab-individual")["data"]  # the other connection still reads


# --- corrections --------------------------------------------------------------------------


def test_corrected_and_removed_activities_change_both_providers(
    emulator: EmulatorHandle, controls: Controls, clock: OffsetClock
):
    before = controls.list_activities(IBKR)
    dividend = next(a for a in before if a.kind == "dividend" and a.currency == "USD")
    buy = next(a for a in before if a.kind == "buy")
    interest = next(a for a in before if a.kind == "interest")
    controls.correct_activity(IBKR, dividend.id, amount=12.34)
    controls.correct_activity(IBKR, buy.id, new_id="ibkr-correction-1")
    controls.remove_activity(IBKR, interest.id)

    after = controls.list_activities(IBKR)
    assert len(after) == len(before) - 1
    by_id = {a.id: a for a in after}
    assert by_id[dividend.id].amount == 12.34
    assert buy.id not in by_id and interest.id not in by_id
    assert by_id["ibkr-correction-1"].amount == buy.amount
    assert by_id["ibkr-correction-1"].trade_date == buy.trade_date

    snap = {r.id: r for r in snap_history(emulator, IBKR)}
    assert set(snap) == set(by_id)
    assert snap[dividend.id].amount == 12.34
    account_id = data.PLAID_ACCOUNT_IDS[IBKR]
    plaid = {r.id: r for r in plaid_history(emulator, IBKR)}
    assert set(plaid) == {transaction_id(account_id, i) for i in by_id}
    assert plaid[transaction_id(account_id, dividend.id)].amount == 12.34
    assert plaid[transaction_id(account_id, "ibkr-correction-1")].amount == buy.amount

    # A correction of the corrected activity (under its new id) changes it again.
    controls.correct_activity(IBKR, "ibkr-correction-1", amount=-100.0, new_id="ibkr-correction-2")
    again = {a.id: a for a in controls.list_activities(IBKR)}
    assert "ibkr-correction-1" not in again
    assert again["ibkr-correction-2"].amount == -100.0
    # Other accounts are untouched; a state reset brings the history back.
    assert controls.list_activities("schwab-individual") == activities_for(
        ACCOUNTS["schwab-individual"], _today(clock)
    )
    controls.reset_state()
    assert controls.list_activities(IBKR) == before


def test_corrections_refuse_what_they_cannot_do(controls: Controls):
    served = controls.list_activities("merrill-cma")
    first, second = served[0], served[1]
    with pytest.raises(ValueError, match="serves no activity"):
        controls.correct_activity("merrill-cma", "no-such-id", amount=1.0)
    with pytest.raises(ValueError, match="unknown account"):
        controls.remove_activity("merrill-nope", first.id)
    with pytest.raises(ValueError, match="needs an amount"):
        controls.correct_activity("merrill-cma", first.id)
    with pytest.raises(ValueError, match="finite number"):
        controls.correct_activity("merrill-cma", first.id, amount=float("nan"))
    with pytest.raises(ValueError, match="already has"):
        controls.correct_activity("merrill-cma", first.id, new_id=second.id)
    controls.remove_activity("merrill-cma", first.id)
    with pytest.raises(ValueError, match="serves no activity"):
        controls.remove_activity("merrill-cma", first.id)
    assert controls.list_activities("merrill-cma") == served[1:]


def test_a_re_dated_activity_is_served_on_its_new_day_by_both_providers(
    emulator: EmulatorHandle, controls: Controls, clock: OffsetClock
):
    before = controls.list_activities(IBKR)
    moved = next(a for a in before if a.kind == "dividend" and a.currency == "USD")
    new_day = history_window(_today(clock))[1] - timedelta(days=3)
    controls.correct_activity(IBKR, moved.id, trade_date=new_day)

    after = controls.list_activities(IBKR)
    assert len(after) == len(before)
    assert [a.trade_date for a in after] == sorted(a.trade_date for a in after)
    assert next(a for a in after if a.id == moved.id).trade_date == new_day
    snap = {r.id: r for r in snap_history(emulator, IBKR)}
    assert snap[moved.id].day == new_day and snap[moved.id].amount == moved.amount
    plaid = {r.id: r for r in plaid_history(emulator, IBKR)}
    assert plaid[transaction_id(data.PLAID_ACCOUNT_IDS[IBKR], moved.id)].day == new_day
    with pytest.raises(ValueError, match="a trade_date is a day"):
        controls.correct_activity(IBKR, moved.id, trade_date=_today(clock))


def test_a_repeated_activity_comes_twice_in_one_answer_of_both_providers(
    emulator: EmulatorHandle, controls: Controls
):
    before = controls.list_activities(IBKR)
    repeated = next(a for a in before if a.kind == "buy")
    controls.repeat_activity(IBKR, repeated.id)

    assert [a.id for a in controls.list_activities(IBKR)].count(repeated.id) == 2
    assert [r.id for r in snap_history(emulator, IBKR)].count(repeated.id) == 2
    plaid_id = transaction_id(data.PLAID_ACCOUNT_IDS[IBKR], repeated.id)
    assert [r.id for r in plaid_history(emulator, IBKR)].count(plaid_id) == 2
    controls.reset_state()
    assert controls.list_activities(IBKR) == before


def test_the_http_activity_switches(
    emulator: EmulatorHandle, controls: Controls, clock: OffsetClock
):
    admin = f"{emulator.base_url}/_emulator/activity"
    listed = requests.get(f"{admin}/list", params={"account": IBKR}, timeout=5)
    assert listed.status_code == 200
    activities = listed.json()["activities"]
    assert activities == [a.to_json() for a in controls.list_activities(IBKR)]
    fee = next(a for a in activities if a["fee"] > 0)
    eur = next(a for a in activities if a["currency"] == "EUR" and a["kind"] == "dividend")
    correct = {"account": IBKR, "activity_id": fee["id"], "amount": -1.5, "new_id": "re-issued"}
    assert requests.post(f"{admin}/correct", json=correct, timeout=5).json() == {"ok": True}
    remove = {"account": IBKR, "activity_id": eur["id"]}
    assert requests.post(f"{admin}/remove", json=remove, timeout=5).json() == {"ok": True}
    buy = next(a for a in activities if a["kind"] == "buy" and a["id"] != fee["id"])
    day = history_window(_today(clock))[0].isoformat()
    moved = {"account": IBKR, "activity_id": buy["id"], "trade_date": day}
    assert requests.post(f"{admin}/correct", json=moved, timeout=5).json() == {"ok": True}
    repeat = {"account": IBKR, "activity_id": buy["id"]}
    assert requests.post(f"{admin}/repeat", json=repeat, timeout=5).json() == {"ok": True}
    not_a_day = {**moved, "trade_date": "yesterday"}
    assert requests.post(f"{admin}/correct", json=not_a_day, timeout=5).status_code == 400
    served = {a.id: a for a in controls.list_activities(IBKR)}
    assert served["re-issued"].amount == -1.5 and eur["id"] not in served
    snap = {r.id: r for r in snap_history(emulator, IBKR)}
    assert snap["re-issued"].amount == -1.5 and eur["id"] not in snap
    assert [r.day.isoformat() for r in snap.values() if r.id == buy["id"]] == [day]
    assert [a.id for a in controls.list_activities(IBKR)].count(buy["id"]) == 2

    bad = requests.post(f"{admin}/remove", json={"account": IBKR, "activity_id": "x"}, timeout=5)
    assert bad.status_code == 400 and "serves no activity" in bad.json()["error"]
    no_account = requests.get(f"{admin}/list", timeout=5)
    assert no_account.status_code == 400


# --- the emulator's today -------------------------------------------------------------------


def _fixed_clock(day: date) -> Callable[[], float]:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
    return lambda: noon


def test_the_served_history_follows_the_emulators_today():
    # Plaid checks no timestamps, so its answers can come from an emulator days ahead.
    token = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
    firsts = []
    for today in (date(2027, 3, 10), date(2027, 3, 10) + timedelta(days=45)):
        with start_emulator(clock=_fixed_clock(today)) as handle:
            answer = plaid_page(handle, token, count=500)
            days = sorted(t["date"] for t in answer["investment_transactions"])
            assert days[0] == (today - timedelta(days=730)).isoformat()
            assert days[-1] < today.isoformat()
            assert handle.controls is not None
            served = handle.controls.list_activities("merrill-cma")
            assert served == activities_for(ACCOUNTS["merrill-cma"], today)
            firsts.append(date.fromisoformat(days[0]))
    assert firsts[1] - firsts[0] == timedelta(days=45)
