"""Two years of activity for a demo account, as seeded, relative to an injected ``today``.

Every account starts with a deposit (one per currency it holds cash in) sized so that the
activities, replayed, leave exactly the seeded cash. Then the lots of each holding
(``sandbox.activity.lots``), quarterly cash dividends on the dividend payers (a fixed rate
per share times the units held the day before), monthly dividends on the money-market
funds, monthly interest on USD cash, a quarterly account fee on the Merrill CMA,
commissions on Interactive Brokers trades, one withdrawal from Schwab, and ASML's dividend,
paid twice a year in EUR into the EUR cash of the Interactive Brokers account.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sandbox.activity.lots import CENT, Trade, digest, plan
from sandbox.activity.model import Activity, ActivityKind, history_window
from sandbox.data import AccountTemplate, Holding, stable_uuid

# Quarterly cash dividend per share (in the holding's currency).
QUARTERLY_DIVIDENDS: dict[str, Decimal] = {
    ticker: Decimal(rate)
    for ticker, rate in {
        "AAPL": "0.25",
        "MSFT": "0.83",
        "JNJ": "1.24",
        "KO": "0.485",
        "JPM": "1.25",
        "PG": "1.0065",
        "VOO": "1.78",
        "QQQ": "0.71",
        "VTI": "0.95",
        "BND": "0.66",
        "SCHD": "0.66",
        "SPY": "1.76",
        "VEA": "0.39",
        "IEF": "0.87",
        "SCHB": "0.21",
        "SCHX": "0.23",
        "V": "0.59",
        "HD": "2.25",
        "COST": "1.16",
        "SCHW": "0.27",
        "VTSAX": "0.47",
        "FXAIX": "0.72",
        "SWPPX": "0.27",
    }.items()
}
# Money-market funds pay every month, per share (about 4.9% a year at 1.00).
MONTHLY_FUND_DIVIDEND = Decimal("0.0041")
# Dividends paid in another currency than the holding's: ticker -> (currency, rate, months).
FOREIGN_DIVIDENDS: dict[str, tuple[str, Decimal, tuple[int, ...]]] = {
    "ASML": ("EUR", Decimal("1.52"), (5, 11)),
}
CASH_INTEREST_RATE = Decimal("0.035")  # a year, on USD cash, paid monthly
QUARTERLY_ACCOUNT_FEES = {"merrill-cma": Decimal("25.00")}
COMMISSION_PER_SHARE = {"ibkr-individual": Decimal("0.005")}
MINIMUM_COMMISSION = Decimal("1.00")
WITHDRAWALS = {"schwab-individual": (400, Decimal("1500.00"))}  # days after the start, amount

# The order of a day's activities: money in first, dividends on the units held the day
# before, then trades, then money out.
_DAY_ORDER: dict[ActivityKind, int] = {
    "deposit": 0,
    "dividend": 1,
    "interest": 2,
    "fee": 3,
    "sell": 4,
    "buy": 5,
    "withdrawal": 6,
}


@dataclass(frozen=True)
class _Draft:
    day: date
    kind: ActivityKind
    amount: Decimal
    currency: str
    description: str
    ticker: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    fee: Decimal = Decimal(0)


def activities_for(account: AccountTemplate, today: date) -> list[Activity]:
    """The account's activities from ``today`` - 730 days to yesterday, oldest first."""
    return list(_generated(account, today))


@functools.lru_cache(maxsize=64)
def _generated(account: AccountTemplate, today: date) -> tuple[Activity, ...]:
    start, end = history_window(today)
    drafts: list[_Draft] = []
    for index, holding in enumerate(account.holdings):
        trades = plan(account.key, index, holding)
        drafts.extend(_trade(account.key, holding, t, start) for t in trades)
        held = [(_trading_day(start + timedelta(days=t.offset)), t) for t in trades]
        drafts.extend(_dividends(holding, held, start, end))
    drafts.extend(_cash_flows(account, start, end))
    drafts = _deposits(account, drafts, start) + drafts
    drafts.sort(key=lambda d: (d.day, _DAY_ORDER[d.kind]))
    return tuple(_numbered(account.key, drafts))


def _trading_day(day: date) -> date:
    """A weekend day moved back to the Friday before it."""
    return day - timedelta(days=max(0, day.weekday() - 4))


def _number(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _trade(account_key: str, holding: Holding, trade: Trade, start: date) -> _Draft:
    value = (trade.quantity * trade.price).quantize(CENT)
    fee = _commission(account_key, holding, trade.quantity, value)
    amount = -(value + fee) if trade.side == "buy" else value - fee
    verb = "Bought" if trade.side == "buy" else "Sold"
    return _Draft(
        day=_trading_day(start + timedelta(days=trade.offset)),
        kind=trade.side,
        amount=amount,
        currency=holding.currency,
        description=f"{verb} {_number(trade.quantity)} {holding.ticker} @ {_number(trade.price)}",
        ticker=holding.ticker,
        quantity=trade.quantity,
        price=trade.price,
        fee=fee,
    )


def _commission(account_key: str, holding: Holding, quantity: Decimal, value: Decimal) -> Decimal:
    per_share = COMMISSION_PER_SHARE.get(account_key)
    if per_share is None or holding.cash_equivalent:  # money-market funds trade free
        return Decimal(0)
    commission = max(MINIMUM_COMMISSION, (quantity * per_share).quantize(CENT))
    return min(commission, (value / 100).quantize(CENT))  # at most 1% of the trade


def _months(start: date, end: date) -> list[tuple[int, int]]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _paydays(start: date, end: date, day: int, months: set[int] | None) -> list[date]:
    """Trading days in (start, end]: ``day`` of each month, or of ``months`` only."""
    days = [
        _trading_day(date(year, month, day))
        for year, month in _months(start, end)
        if months is None or month in months
    ]
    return [d for d in days if start < d <= end]


def _dividends(
    holding: Holding, held: list[tuple[date, Trade]], start: date, end: date
) -> list[_Draft]:
    ticker = holding.ticker
    day = 5 + digest(ticker, "payday") % 20
    if ticker in FOREIGN_DIVIDENDS:
        currency, rate, months = FOREIGN_DIVIDENDS[ticker]
        schedule = _paydays(start, end, day, set(months))
    elif holding.kind == "money market":
        currency, rate = holding.currency, MONTHLY_FUND_DIVIDEND
        schedule = _paydays(start, end, 1, None)
    elif ticker in QUARTERLY_DIVIDENDS:
        currency, rate = holding.currency, QUARTERLY_DIVIDENDS[ticker]
        phase = digest(ticker, "quarter") % 3
        schedule = _paydays(start, end, day, {m for m in range(1, 13) if m % 3 == phase})
    else:
        return []
    drafts = []
    for payday in schedule:
        units = sum(
            (t.quantity if t.side == "buy" else -t.quantity for d, t in held if d < payday),
            Decimal(0),
        )
        amount = (units * rate).quantize(CENT)
        if amount > 0:
            drafts.append(
                _Draft(
                    day=payday,
                    kind="dividend",
                    amount=amount,
                    currency=currency,
                    description=(
                        f"{ticker} cash dividend, {_number(rate)} {currency} per share "
                        f"on {_number(units)} shares"
                    ),
                    ticker=ticker,
                )
            )
    return drafts


def _cash_flows(account: AccountTemplate, start: date, end: date) -> list[_Draft]:
    """Interest on USD cash, the account fee and withdrawals."""
    drafts: list[_Draft] = []
    usd = Decimal(str(dict(account.cash).get("USD", 0)))
    interest = (usd * CASH_INTEREST_RATE / 12).quantize(CENT)
    if interest > 0:
        drafts.extend(
            _Draft(payday, "interest", interest, "USD", "Interest on USD cash balance")
            for payday in _paydays(start, end, 1, None)
        )
    fee = QUARTERLY_ACCOUNT_FEES.get(account.key)
    if fee is not None:
        drafts.extend(
            _Draft(payday, "fee", -fee, "USD", "Quarterly account fee")
            for payday in _paydays(start, end, 20, {1, 4, 7, 10})
        )
    if account.key in WITHDRAWALS:
        offset, amount = WITHDRAWALS[account.key]
        drafts.append(
            _Draft(
                _trading_day(start + timedelta(days=offset)),
                "withdrawal",
                -amount,
                "USD",
                "Withdrawal to linked bank account",
            )
        )
    return drafts


def _deposits(account: AccountTemplate, drafts: list[_Draft], start: date) -> list[_Draft]:
    """The opening deposits: per currency, what makes the activities leave the seeded cash."""
    flows: dict[str, Decimal] = defaultdict(Decimal)
    for draft in drafts:
        flows[draft.currency] += draft.amount
    cash = {currency: Decimal(str(amount)) for currency, amount in account.cash}
    deposits = []
    for currency in sorted(set(flows) | set(cash), key=lambda c: (c != "USD", c)):
        amount = cash.get(currency, Decimal(0)) - flows[currency]
        if amount > 0:
            deposits.append(
                _Draft(start, "deposit", amount, currency, f"Opening deposit ({currency})")
            )
    return deposits


def _numbered(account_key: str, drafts: list[_Draft]) -> list[Activity]:
    """Activities with stable ids: account, date, kind, ticker and a per-day sequence."""
    seen: dict[tuple[date, str, str], int] = defaultdict(int)
    activities = []
    for d in drafts:
        key = (d.day, d.kind, d.ticker or "-")
        sequence = seen[key]
        seen[key] += 1
        activities.append(
            Activity(
                id=stable_uuid("activity", account_key, d.day.isoformat(), *key[1:], str(sequence)),
                account_key=account_key,
                trade_date=d.day,
                kind=d.kind,
                ticker=d.ticker,
                quantity=None if d.quantity is None else float(d.quantity),
                price=None if d.price is None else float(d.price),
                amount=float(d.amount),
                fee=float(d.fee),
                currency=d.currency,
                description=d.description,
            )
        )
    return activities
