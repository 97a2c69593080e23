"""The monthly income chart of the Activity page: vertical bars drawn as SVG on the server
(no script, nothing from a CDN; sizes are SVG attributes, as the CSP forbids inline styles)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEIGHT = 140.0  # SVG units of the tallest bar
BAR_WIDTH = 22
GAP = 8


@dataclass(frozen=True)
class MonthBar:
    month: str
    income: float
    costs: float
    x: int
    height: float
    y: float

    @property
    def label(self) -> str:
        return self.month[5:]  # "2026-03" -> "03"


@dataclass(frozen=True)
class IncomeChart:
    currency: str
    bars: tuple[MonthBar, ...]
    total: float

    @property
    def width(self) -> int:
        return len(self.bars) * (BAR_WIDTH + GAP) + GAP

    @property
    def height(self) -> int:
        return int(HEIGHT) + 30


def monthly_income_chart(income: dict[str, Any]) -> IncomeChart | None:
    """Dividends and interest per month, in the base currency; None when there were none."""
    months = income.get("by_month") or []
    values = [(m["month"], m["dividends"] + m["interest"], m["fees"] + m["taxes"]) for m in months]
    top = max((v for _, v, _ in values), default=0.0)
    if top <= 0:
        return None
    bars = []
    for index, (month, earned, paid) in enumerate(values):
        height = round(HEIGHT * max(earned, 0.0) / top, 2)
        bars.append(
            MonthBar(
                month=month,
                income=round(earned, 2),
                costs=round(paid, 2),
                x=GAP + index * (BAR_WIDTH + GAP),
                height=height,
                y=round(HEIGHT - height + 4, 2),
            )
        )
    return IncomeChart(
        currency=income["base_currency"],
        bars=tuple(bars),
        total=round(sum(b.income for b in bars), 2),
    )
