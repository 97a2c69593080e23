"""What the cache saves: a live fetch's time, and a simulated week of provider calls."""

from __future__ import annotations

import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import Clock, build, database, emulated, ms, time_calls


def live_fetch(services: Any, repeat: int) -> dict[str, float]:
    """Both providers fetched at once, bypassing the cache (with the emulated latency)."""
    live = time_calls(lambda: services.positions.get_all_positions(force_refresh=True), repeat)
    return {"p50": ms(statistics.median(live))}


def simulated_week(
    kind: str, instance: Path, calls_per_day: int, uncached_days: int = 7
) -> dict[str, Any]:
    """Provider calls for a week of ``calls_per_day`` reads, with and without the cache.

    The cached week is always run in full. Without a cache every read is a live
    fetch (one call per Item and account, a few seconds of work each on this
    emulator), so ``uncached_days`` < 7 runs that many days and scales the counts
    to the week; the JSON keeps what was measured and over how many days.
    """
    results: dict[str, Any] = {}
    for cached in (True, False):
        days = 7 if cached else max(1, min(7, uncached_days))
        clock = Clock()
        folder = instance / f"week-{cached}"
        folder.mkdir(parents=True, exist_ok=True)
        with emulated(folder) as emulator, database(kind) as database_url:
            services = build(database_url, emulator, clock, folder)
            try:
                _run_week(services, clock, calls_per_day, cached, days)
            finally:
                services.close()
            controls = emulator.controls
            scale = 7 / days
            items, accounts = 2, 2
            results["cached" if cached else "uncached"] = {
                "days_measured": days,
                "plaid_holdings_calls_per_item": controls.calls("plaid /investments/holdings/get")
                / items
                * scale,
                "snaptrade_position_calls_per_account": controls.calls(
                    "snaptrade /accounts/{accountId}/positions/all"
                )
                / accounts
                * scale,
                "all_provider_calls": controls.calls() * scale,
            }
    return results


def _run_week(services: Any, clock: Clock, calls_per_day: int, cached: bool, days: int) -> None:
    step = timedelta(days=1) / calls_per_day
    for _ in range(calls_per_day * days):
        if cached:
            services.position_views.answer("summary")
        else:
            services.positions.get_all_positions(use_cache=False)
        clock.now += step


def markdown(results: dict[str, Any]) -> str:
    """Live fetch, cold start and the simulated week, one row per database and figure."""
    lines = ["| database | figure | value |", "|---|---|---|"]
    for kind, f in results.items():
        lines.append(
            f"| {kind} | live fetch (cache bypassed, both providers), p50 "
            f"| {f['live_fetch_ms']['p50']} ms |"
        )
        lines.append(
            f"| {kind} | warm cached read in the service (demo, summary) / live fetch "
            f"| {f['cached_over_live']} |"
        )
        cold = f["cold_start"]
        lines.append(
            f"| {kind} | MCP cold start to tools/list: ours / bare MCPServer "
            f"| {cold['ours_ms']} / {cold['bare_ms']} ms = {cold['ratio']}x |"
        )
        week = f["simulated_week_200_calls_a_day"]
        days = week["uncached"]["days_measured"]
        scaled = "" if days == 7 else f" ({days} day(s) measured, scaled to 7)"
        lines.append(
            f"| {kind} | simulated week, 200 calls a day: Plaid holdings calls per Item "
            f"(cached / uncached{scaled}) | "
            f"{week['cached']['plaid_holdings_calls_per_item']:g} / "
            f"{week['uncached']['plaid_holdings_calls_per_item']:g} |"
        )
        lines.append(
            f"| {kind} | same: SnapTrade positions calls per account (cached / uncached) | "
            f"{week['cached']['snaptrade_position_calls_per_account']:g} / "
            f"{week['uncached']['snaptrade_position_calls_per_account']:g} |"
        )
    return "\n".join(lines)
