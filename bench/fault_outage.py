"""Fault recovery through an outage: both providers down with an expired cache while an
assistant keeps reading, then the way back to fresh data (automatic reads, and one
explicit refresh)."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

from bench.fault_cases import (
    PLAID_HOLDINGS,
    PLAID_LATENCY,
    Clock,
    cached_rows,
    provider_calls,
    sources,
)


def outage(
    services: Any, emulator: Any, clock: Clock, minutes: int, every_s: int
) -> dict[str, Any]:
    """Both providers down for ``minutes`` with an expired cache; reads every ``every_s`` s."""
    from services.positions.service import PositionService

    controls = emulator.controls
    controls.clear()
    for provider in ("plaid", "snaptrade"):
        # Explicit refreshes: they also repair a connection an earlier case marked.
        services.positions.refresh_provider_positions(provider)
    # Both caches expired: the next automatic read tries to fetch.
    longest = max(PositionService.cache_hours_for_provider(p) for p in ("plaid", "snaptrade"))
    clock.now += timedelta(hours=longest + 1)
    before = {p: cached_rows(services, p) for p in ("plaid", "snaptrade")}
    controls.fail("*", "503")
    controls.reset_counts()
    reads, stale, failed, wall = 0, 0, 0, []
    outage_end = clock.now + timedelta(minutes=minutes)
    while clock.now < outage_end:
        started = time.perf_counter()
        try:
            answer = services.position_views.answer("summary")
        except Exception:
            failed += 1
        else:
            stale += all(answer["cache_info"][p].get("stale") for p in ("plaid", "snaptrade"))
        wall.append(time.perf_counter() - started)
        reads += 1
        clock.now += timedelta(seconds=every_s)
    during = {
        "plaid_holdings_calls_per_item": controls.calls(PLAID_HOLDINGS) / sources("plaid"),
        "plaid_calls": provider_calls(controls, "plaid"),
        "snaptrade_calls": provider_calls(controls, "snaptrade"),
        "all_provider_calls": controls.calls(),
    }
    rows_kept = all(cached_rows(services, p) == before[p] for p in before)
    controls.clear()
    ended_at = clock.now
    automatic_reads = 0
    recovered_after: float | None = None
    while clock.now < ended_at + timedelta(hours=1):
        answer = services.position_views.answer("summary")
        automatic_reads += 1
        info = answer["cache_info"]
        if not any(info[p].get("stale") for p in ("plaid", "snaptrade")):
            recovered_after = (clock.now - ended_at).total_seconds() / 60
            break
        clock.now += timedelta(seconds=every_s)
    # The person's path: another outage with expired caches, a read that fails and
    # backs off; the outage ends and the person presses refresh for Plaid.
    clock.now += timedelta(hours=PositionService.cache_hours_for_provider("plaid") + 1)
    controls.fail("*", "503")
    backed_off = services.position_views.answer("summary")["cache_info"]["plaid"]
    controls.clear()
    clock.now += timedelta(minutes=1)
    after_outage = services.position_views.answer("summary")["cache_info"]["plaid"]
    # With the usual provider latency, so the figure is what a person would wait.
    controls.set_latency(PLAID_HOLDINGS, PLAID_LATENCY)
    started = time.perf_counter()
    explicit = services.position_views.answer("summary", "plaid")
    explicit_seconds = time.perf_counter() - started
    controls.clear()
    explicit_fresh = explicit["refresh"]["ok"] and not explicit["cache_info"]["plaid"]["stale"]
    return {
        "outage_minutes": minutes,
        "read_every_seconds": every_s,
        "reads_during_outage": reads,
        "answered": reads - failed,
        "answered_stale_with_warning": stale,
        "exceptions": failed,
        "read_wall_ms": {
            "p50": round(statistics.median(wall) * 1000, 1),
            "max": round(max(wall) * 1000, 1),
        },
        "calls_during_outage": during,
        "cached_rows_unchanged": rows_kept,
        "automatic_reads_to_fresh_after_outage": automatic_reads,
        "minutes_from_outage_end_to_fresh_automatic": recovered_after,
        "explicit_refresh_after_outage_seconds": round(explicit_seconds, 2),
        "explicit_refresh_ok": explicit_fresh,
        # The read right after the outage still served stale rows (back-off), as designed.
        "read_after_outage_still_backing_off": bool(
            backed_off.get("stale") and after_outage.get("stale")
        ),
        "backoff_minutes": PositionService.FAILED_REFRESH_BACKOFF.total_seconds() / 60,
    }
