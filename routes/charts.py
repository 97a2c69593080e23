"""Allocation bar charts, drawn as SVG on the server (no script, nothing from a CDN).

Each chart is in the base currency, from the summary's base totals (every amount
converted at the rate the answer's ``fx`` block names). A currency with no rate is never
added at 1:1: it gets a chart of its own.
Colours and sizes are SVG presentation attributes, not ``style``: the CSP
forbids inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PALETTE = (
    "#2456d6",
    "#0f9d76",
    "#d9822b",
    "#8e44ad",
    "#c0392b",
    "#16a2b8",
    "#7f8c8d",
    "#b7950b",
    "#34495e",
)
# SVG units, in a 320-wide view box. Each row is a label line over its bar: a name of any
# length ("Interactive Brokers") has the whole width and never runs into the bar; the figure
# (up to "100.0%") sits right of the bar.
BAR_AREA_WIDTH = 270.0
ROW_HEIGHT = 34
LABEL_CHARS = 44  # what fits in 320 units at 12px; a longer name ends in "…"

LABELS = {
    "equity": "Stocks",
    "etf": "ETFs",
    "mutual_fund": "Mutual funds",
    "money_market": "Money market",
    "fixed_income": "Bonds",
    "option": "Options",
    "crypto": "Crypto",
    "cash": "Cash",
    "other": "Other",
}


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    share: float  # of the chart's total, 0..1 (negative values draw no bar)
    color: str
    y: int

    @property
    def width(self) -> float:
        return round(BAR_AREA_WIDTH * max(0.0, min(1.0, self.share)), 2)

    @property
    def percent(self) -> str:
        return f"{self.share * 100:.1f}%"

    @property
    def short_label(self) -> str:
        """The label line: whole if it fits, else cut with "…" (the tooltip has it whole)."""
        if len(self.label) <= LABEL_CHARS:
            return self.label
        return self.label[: LABEL_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Chart:
    title: str
    currency: str
    total: float
    bars: tuple[Bar, ...]

    @property
    def height(self) -> int:
        return ROW_HEIGHT * len(self.bars)


def allocation_charts(summary: dict[str, Any], fx: dict[str, Any]) -> list[Chart]:
    """Charts by security type and by institution, in the base currency; one more per
    currency without a rate, in that currency."""
    charts = []
    base = fx.get("base_currency", "")
    for key, title in (
        ("by_security_type", "By security type"),
        ("by_institution", "By institution"),
    ):
        labels = LABELS if key == "by_security_type" else {}
        in_base = {
            name: {base: value} for name, value in (summary.get(f"{key}_base") or {}).items()
        }
        native: dict[str, dict[str, float]] = summary.get(key) or {}
        for currency, groups in [(base, in_base)] + [
            (c, native) for c in sorted(fx.get("unconverted") or {})
        ]:
            chart = _chart(title, currency, groups, labels=labels)
            if chart is not None:
                charts.append(chart)
    return charts


def _chart(
    title: str, currency: str, groups: dict[str, dict[str, float]], *, labels: dict[str, str]
) -> Chart | None:
    values = {name: totals.get(currency, 0.0) for name, totals in groups.items()}
    values = {name: value for name, value in values.items() if value}
    total = sum(value for value in values.values() if value > 0)
    if total <= 0:
        return None
    ranked = sorted(values.items(), key=lambda item: item[1], reverse=True)
    bars = tuple(
        Bar(
            label=labels.get(name, name),
            value=round(value, 2),
            share=value / total,
            color=PALETTE[index % len(PALETTE)],
            y=index * ROW_HEIGHT,
        )
        for index, (name, value) in enumerate(ranked)
    )
    return Chart(title=title, currency=currency, total=round(total, 2), bars=bars)
