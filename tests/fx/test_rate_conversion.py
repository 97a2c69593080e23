"""Converting to the base currency with one snapshot of euro reference rates: a cross rate
through the euro, dated the older of its two rates; no rate means no conversion (never
1:1); a rate more than a week older than the positions is used, and said to be old."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.fx.convert import OLD_RATE, Converter
from services.fx.quotes import RateQuote, RateSnapshot

ON = date(2026, 11, 2)


def converter(*quotes: RateQuote, base: str = "USD") -> Converter:
    return Converter(base, RateSnapshot(ON, {q.currency: q for q in quotes}, version=1))


def quote(currency: str, per_euro: float, age: timedelta = timedelta(0)) -> RateQuote:
    return RateQuote(currency, per_euro, ON - age, "ecb")


def test_a_cross_rate_goes_through_the_euro_and_is_dated_the_older_of_its_two_rates() -> None:
    fx = converter(quote("USD", 1.10), quote("GBP", 0.88, timedelta(days=3)))
    rate, rate_date, source = fx.rate("GBP") or (0.0, None, None)
    assert rate == pytest.approx(1.10 / 0.88)
    assert rate_date == ON - timedelta(days=3) and source == "ecb"
    assert fx.to_base(100.0, "GBP") == pytest.approx(125.0)
    assert fx.to_base(100.0, "EUR") == pytest.approx(110.0)


def test_an_amount_without_a_rate_is_kept_apart_never_counted_one_to_one() -> None:
    fx = converter(quote("USD", 1.10))
    assert fx.to_base(100.0, "XYZ") is None
    total, unconverted = fx.total({"USD": 50.0, "XYZ": 100.0})
    assert (total, unconverted) == (50.0, {"XYZ": 100.0})
    warnings = fx.report(["USD", "XYZ"], unconverted)["warnings"]
    assert any("no exchange rate to USD for XYZ" in w for w in warnings)


def test_a_rate_more_than_a_week_older_than_the_positions_is_said_to_be_old() -> None:
    old = OLD_RATE + timedelta(days=1)
    fx = converter(quote("USD", 1.10), quote("JPY", 160.0, old), quote("GBP", 0.88, OLD_RATE))
    report = fx.report(["USD", "JPY", "GBP"], {})
    assert [r["pair"] for r in report["rates"]] == ["GBP/USD", "JPY/USD"]
    [warning] = report["warnings"]  # a week old exactly is not old yet
    assert warning.startswith(f"the JPY/USD rate is from {(ON - old).isoformat()}")
    assert f"{old.days} days before the positions" in warning
