"""The service alone as the portfolio grows: ``PositionViews.answer(...)`` in process.

At each size the portfolio is set through :func:`bench.common.set_portfolio_size`
(Plaid's rows replaced in one transaction that moves its cache generation), then:

* **cold**: the first read of the new generation, which reads every row and builds
  the view, timed on a fresh ``PositionViews`` (no view kept) per try, median of
  ``cold_repeat`` tries per format;
* **warm**: ``repeat`` reads through the service's own ``PositionViews`` after one
  read built its view: one small query for the generation, one for the connections,
  and the answer cut from the view;
* **answer size**: bytes of ``json.dumps`` of the answer, for every format
  (``full`` and ``list`` being their first page at the default limit).
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from typing import Any

from bench.common import ms, p50_p95, set_portfolio_size, time_calls

FORMATS = ("summary", "full", "by_account", "list", "holdings")
SHOWN = ("summary", "full")
# What "no answer over the page limit" is held to: well under the ~25,000 tokens
# (~100 KB of JSON) MCP clients accept in one tool result.
ANSWER_LIMIT_BYTES = 100_000


def measure(services: Any, size: int, *, repeat: int, cold_repeat: int) -> dict[str, Any]:
    """Cold and warm answer times and sizes at ``size`` positions (the cache set to it)."""
    from services.positions.views import PositionViews

    positions = set_portfolio_size(services, size)
    figures: dict[str, Any] = {"positions": positions, "formats": {}}
    views = services.position_views
    for fmt in FORMATS:
        cold = []
        for _ in range(cold_repeat):
            fresh = PositionViews(
                services.positions,
                services.connections,
                services.fx,
                services.settings.base_currency,
            )
            started = time.perf_counter()
            fresh.answer(fmt)
            cold.append(time.perf_counter() - started)
        answer = views.answer(fmt)  # builds this generation's view if not yet built
        if fmt in ("full", "list"):  # the rows paged: every cached row, duplicates included
            assert answer["total"] == positions, (answer["total"], positions)
        warm = time_calls(functools.partial(views.answer, fmt), repeat)
        figures["formats"][fmt] = {
            "cold_ms": ms(statistics.median(cold)),
            "warm_ms": p50_p95(warm),
            "answer_bytes": len(json.dumps(answer).encode()),
            "page_rows": len(answer["positions"]) if "positions" in answer else None,
        }
    figures["largest_answer_bytes"] = max(f["answer_bytes"] for f in figures["formats"].values())
    return figures


def run(services: Any, sizes: list[int], *, repeat: int, cold_repeat: int) -> list[dict[str, Any]]:
    """Every size in ``sizes``, smallest first (the demo's rows can only be padded)."""
    return [measure(services, size, repeat=repeat, cold_repeat=cold_repeat) for size in sizes]


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The growth targets, read off the table (shown, not asserted)."""
    first, last = rows[0], rows[-1]
    summary_growth = (
        last["formats"]["summary"]["warm_ms"]["p50"] / first["formats"]["summary"]["warm_ms"]["p50"]
    )
    largest = max(row["largest_answer_bytes"] for row in rows)
    return {
        "summary_growth": {
            "from_positions": first["positions"],
            "to_positions": last["positions"],
            "ratio": round(summary_growth, 2),
            "target": 2.0,
            "met": summary_growth <= 2.0,
        },
        "largest_answer": {
            "bytes": largest,
            "limit_bytes": ANSWER_LIMIT_BYTES,
            "met": largest <= ANSWER_LIMIT_BYTES,
        },
    }


def markdown(results: dict[str, list[dict[str, Any]]]) -> str:
    """Table 2: one row per database and size."""
    lines = [
        "| database | positions | summary warm p50 | summary first read (cold) | summary size "
        "| full warm p50 (first page) | full first read (cold) | full size | largest answer, "
        "any format |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows in results.items():
        for row in rows:
            s, f = row["formats"]["summary"], row["formats"]["full"]
            lines.append(
                f"| {kind} | {row['positions']:,} | {s['warm_ms']['p50']} ms | {s['cold_ms']} ms "
                f"| {_kb(s['answer_bytes'])} | {f['warm_ms']['p50']} ms | {f['cold_ms']} ms "
                f"| {_kb(f['answer_bytes'])} ({f['page_rows']} rows) "
                f"| {_kb(row['largest_answer_bytes'])} |"
            )
    lines.append("")
    for kind, rows in results.items():
        t = targets(rows)
        growth, largest = t["summary_growth"], t["largest_answer"]
        lines.append(
            f"* {kind}: summary at {growth['to_positions']:,} positions is "
            f"{growth['ratio']}x its time at {growth['from_positions']} (target at most 2x: "
            f"{'met' if growth['met'] else 'NOT met'}); largest answer {_kb(largest['bytes'])} "
            f"(limit {_kb(largest['limit_bytes'])}: {'met' if largest['met'] else 'NOT met'})."
        )
    return "\n".join(lines)


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"
