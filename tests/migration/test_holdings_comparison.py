"""Do two providers describe the same holdings? Tickers and quantities must agree (within a
relative tolerance), cash per currency with money-market funds folded in; prices and values
are shown but never decide."""

from __future__ import annotations

from typing import Any

import pytest

from services.migration.comparison import compare_holdings


def holding(
    ticker: str | None,
    quantity: float,
    *,
    value: float | None = None,
    kind: str = "equity",
    currency: str = "USD",
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "ticker": ticker,
        "name": name or ticker,
        "security_type": kind,
        "quantity": quantity,
        "market_value": value if value is not None else quantity * 10.0,
        "currency": currency,
    }


def compare(source: list[dict[str, Any]], target: list[dict[str, Any]], **kw: Any) -> Any:
    return compare_holdings(source, target, source_name="plaid", target_name="snaptrade", **kw)


def test_the_same_securities_and_quantities_match() -> None:
    rows = [holding("AAPL", 10), holding("MSFT", 5.5)]
    result = compare(rows, [holding("MSFT", 5.5), holding("AAPL", 10)])
    assert result.matches is True and result.differences == []
    assert all(row["ok"] for row in result.rows)


def test_the_same_securities_with_different_quantities_do_not_match() -> None:
    result = compare(
        [holding("AAPL", 10), holding("MSFT", 5)], [holding("AAPL", 10), holding("MSFT", 4)]
    )
    assert result.matches is False
    assert result.differences == ["MSFT: plaid 5 vs snaptrade 4"]
    msft = next(row for row in result.rows if row["holding"] == "MSFT")
    assert msft["ok"] is False
    assert (msft["plaid_quantity"], msft["snaptrade_quantity"]) == (5, 4)


def test_a_quantity_difference_within_the_tolerance_matches_and_beyond_it_does_not() -> None:
    source = [holding("VTI", 1000.0)]
    assert compare(source, [holding("VTI", 1000.05)], tolerance=0.0001).matches is True
    assert compare(source, [holding("VTI", 1000.2)], tolerance=0.0001).matches is False


def test_prices_and_values_are_shown_but_never_decide() -> None:
    result = compare([holding("AAPL", 10, value=1900.0)], [holding("AAPL", 10, value=2100.0)])
    assert result.matches is True
    [row] = result.rows
    assert (row["plaid_value"], row["snaptrade_value"]) == (1900.0, 2100.0)


def test_a_security_missing_on_one_side_does_not_match() -> None:
    result = compare([holding("AAPL", 10), holding("TSLA", 2)], [holding("AAPL", 10)])
    assert result.matches is False
    assert result.differences == ["TSLA: missing at snaptrade"]


def test_a_money_market_fund_and_cash_of_the_same_amount_match() -> None:
    source = [holding("AAPL", 1), holding("SWVXX", 250.0, value=250.0, kind="money_market")]
    target = [holding("AAPL", 1), holding(None, 250.0, value=250.0, kind="cash", name="Cash")]
    result = compare(source, target)
    assert result.matches is True
    assert [row["holding"] for row in result.rows] == ["AAPL", "cash USD"]


def test_cash_is_compared_per_currency() -> None:
    source = [holding(None, 100.0, value=100.0, kind="cash", currency="EUR")]
    target = [holding(None, 100.0, value=100.0, kind="cash", currency="USD")]
    result = compare(source, target)
    assert result.matches is False
    assert sorted(result.differences) == [
        "cash EUR: missing at snaptrade",
        "cash USD: missing at plaid",
    ]


@pytest.mark.parametrize("empty", ["plaid", "snaptrade"])
def test_an_empty_side_never_matches(empty: str) -> None:
    rows = [holding("AAPL", 1)]
    result = compare([] if empty == "plaid" else rows, rows if empty == "plaid" else [])
    assert result.matches is False
    assert f"{empty} shows no holdings at this institution" in result.differences
