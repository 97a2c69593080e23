"""Fault recovery figures: what a provider failure costs in calls, time and data.

    python -m bench.faults [--database sqlite|postgres]

Measured against the emulator (in this process, its fault switches), with the
real retry policy (real back-off sleeps) and the real position cache:

1. **Each fault kind, on an explicit refresh** (``get_positions(refresh_provider=...)``)
   with a warm cache: provider calls per Item / account (retries are bounded),
   wall time until the answer, what the answer was, and whether the cached rows
   stayed exactly as they were.
2. **An outage with a stale cache**: both providers answer 503 to everything for
   40 minutes while an assistant reads every 10 s (time injected, so the 240
   reads take seconds): reads answered, provider calls during the outage (the
   15-minute back-off after a failed automatic refresh), then the time from the
   outage's end to fresh data with automatic reads only, and with one explicit
   refresh.

Figures, not assertions (the fault-matrix tests assert); results printed as
Markdown, and with ``--json PATH`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PLAID_HOLDINGS = "plaid /investments/holdings/get"
SNAPTRADE_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
# PROVIDER_TIMEOUT_SECONDS here (20 s by default), so the "timeout" row takes seconds
# rather than a minute; still above the usual Plaid latency below.
TIMEOUT_SECONDS = 2.0
PLAID_LATENCY = 1.5  # the benchmark's usual Plaid holdings latency per Item


@dataclass(frozen=True)
class FaultCase:
    provider: str
    label: str
    fault: str | None  # emulator fault name; None = only latency (the timeout case)
    endpoint: str
    times: int | None = None  # None: every call until cleared
    retry_after: float | None = None
    latency: float = 0.0


def fault_cases() -> list[FaultCase]:
    slow = TIMEOUT_SECONDS + 0.5
    plaid, snap = PLAID_HOLDINGS, SNAPTRADE_POSITIONS
    return [
        FaultCase("plaid", "503 once (transient)", "503", plaid, times=1),
        FaultCase(
            "plaid", "429 RATE_LIMIT, Retry-After 1 s", "RATE_LIMIT_EXCEEDED", plaid, retry_after=1
        ),
        FaultCase("plaid", "500 INTERNAL_SERVER_ERROR", "INTERNAL_SERVER_ERROR", plaid),
        FaultCase("plaid", "503", "503", plaid),
        FaultCase(
            "plaid", f"slower than the {TIMEOUT_SECONDS:g} s timeout", None, plaid, latency=slow
        ),
        FaultCase("plaid", "connection dropped", "drop", plaid),
        FaultCase("plaid", "malformed body", "malformed", plaid),
        FaultCase("plaid", "required field missing", "missing_field", plaid),
        FaultCase("plaid", "ITEM_LOGIN_REQUIRED", "ITEM_LOGIN_REQUIRED", plaid),
        FaultCase("plaid", "INSTITUTION_DOWN", "INSTITUTION_DOWN", plaid),
        FaultCase("snaptrade", "503 once (transient)", "503", snap, times=1),
        FaultCase("snaptrade", "429, Retry-After 1 s", "429", snap, retry_after=1),
        FaultCase("snaptrade", "500", "500", snap),
        FaultCase("snaptrade", "503", "503", snap),
        FaultCase(
            "snaptrade", f"slower than the {TIMEOUT_SECONDS:g} s timeout", None, snap, latency=slow
        ),
        FaultCase("snaptrade", "connection dropped", "drop", snap),
        FaultCase("snaptrade", "malformed body", "malformed", snap),
        FaultCase("snaptrade", "required field missing", "missing_field", snap),
        FaultCase("snaptrade", "402 code 3003 (connection disabled)", "3003", snap),
    ]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def build(database_url: str, emulator: Any, clock: Clock, instance: Path, **env: str) -> Any:
    from services.composition import build_services
    from services.db import make_engine, upgrade_schema
    from settings import load_settings

    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": str(instance),
            "LOG_LEVEL": "ERROR",
            "PROVIDER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            **env,
        },
        use_dotenv=False,
    )
    engine = make_engine(database_url)
    upgrade_schema(engine)
    engine.dispose()
    return build_services(settings, clock=clock, emulator=emulator)


def cached_rows(services: Any, provider: str) -> list[tuple[Any, ...]]:
    return sorted(
        (p["account_id"], p["ticker"] or "", p["quantity"], p["market_value"], str(p["fetched_at"]))
        for p in services.positions.get_cached_positions()
        if p["provider"] == provider
    )


def sources(provider: str) -> int:
    from sandbox import data, demo

    return len(demo.PLAID_ACCESS_TOKENS) if provider == "plaid" else len(data.SNAPTRADE_ACCOUNT_IDS)


def provider_calls(controls: Any, provider: str) -> int:
    """Every call the emulator received for one provider (all endpoints)."""
    return sum(
        controls.calls(endpoint)
        for endpoint in controls.endpoints
        if endpoint.startswith(provider + " ")
    )


def run_fault_case(services: Any, emulator: Any, case: FaultCase) -> dict[str, Any]:
    """One explicit refresh under ``case``: calls, wall time, answer, rows kept."""

    controls = emulator.controls
    controls.clear()
    # Start from a healthy, freshly cached provider (this also repairs a marked connection).
    services.positions.refresh_provider_positions(case.provider)
    before = cached_rows(services, case.provider)
    if case.fault is not None:
        controls.fail(case.endpoint, case.fault, times=case.times, retry_after=case.retry_after)
    if case.latency:
        controls.set_latency(case.endpoint, case.latency)
    controls.reset_counts()
    started = time.perf_counter()
    try:
        answer = services.position_views.answer("summary", case.provider)
        outcome_error: str | None = None
    except Exception as exc:  # a figure, not a test: report what escaped
        answer, outcome_error = None, f"{type(exc).__name__} escaped"
    seconds = time.perf_counter() - started
    calls = controls.calls(case.endpoint)
    controls.clear()
    after = cached_rows(services, case.provider)
    if answer is None:
        outcome = outcome_error or "exception"
    elif answer["refresh"]["ok"]:
        outcome = "fresh data"
    else:
        info = answer["cache_info"][case.provider]
        outcome = "cached rows + error" if info.get("from_cache") else "error"
    connections = answer["cache_info"][case.provider]["connections"] if answer else []
    state = [c["status"] for c in connections]
    return {
        "provider": case.provider,
        "fault": case.label,
        "calls": calls,
        "sources": sources(case.provider),
        "source_name": "Items" if case.provider == "plaid" else "accounts",
        "calls_per_source": round(calls / sources(case.provider), 2),
        "seconds": round(seconds, 2),
        "outcome": outcome,
        "rows_unchanged": after == before if outcome != "fresh data" else None,
        "connections_marked": sorted({s for s in state if s != "ok"}),
    }


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_refused_case(services: Any, refused: Any, provider: str) -> dict[str, Any]:
    """An explicit refresh while the provider's host refuses connections.

    Nothing reaches the emulator, so the attempts are counted in the call ledger
    (every request, failed ones included, is a row there).
    """

    services.positions.refresh_provider_positions(provider)
    before = cached_rows(services, provider)
    calls_before = refused.ledger.count(provider=provider)
    started = time.perf_counter()
    answer = refused.position_views.answer("summary", provider)
    seconds = time.perf_counter() - started
    calls = refused.ledger.count(provider=provider) - calls_before
    first_step = "Items" if provider == "plaid" else "accounts (the account list fails first)"
    return {
        "provider": provider,
        "fault": "connection refused (calls counted in the ledger)",
        "calls": calls,
        "sources": sources(provider),
        "source_name": first_step,
        "calls_per_source": round(calls / sources(provider), 2),
        "seconds": round(seconds, 2),
        "outcome": "fresh data" if answer["refresh"]["ok"] else "cached rows + error",
        "rows_unchanged": cached_rows(services, provider) == before,
        "connections_marked": sorted(
            {c["status"] for c in answer["cache_info"][provider]["connections"]} - {"ok"}
        ),
    }


def outage(
    services: Any, emulator: Any, clock: Clock, minutes: int, every_s: int
) -> dict[str, Any]:
    """Both providers down for ``minutes`` with an expired cache; reads every ``every_s`` s."""
    from services.position_service import PositionService

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


def run(database_url: str, *, outage_minutes: int = 40, every_s: int = 10) -> dict[str, Any]:
    from sandbox.server import start_emulator

    with tempfile.TemporaryDirectory(prefix="bh-faults-") as folder:
        instance = Path(folder)
        emulator = start_emulator(port=0, state_path=instance / "emulator-state.json")
        services = None
        try:
            clock = Clock()
            services = build(database_url, emulator, clock, instance / "instance")
            services.positions.get_all_positions()
            cases = [run_fault_case(services, emulator, case) for case in fault_cases()]
            emulator.controls.clear()
            dead = f"http://127.0.0.1:{closed_port()}"
            refused = build(
                database_url,
                None,
                clock,
                instance / "instance",
                PLAID_BASE_URL=f"{dead}/plaid",
                SNAPTRADE_BASE_URL=f"{dead}/snaptrade",
            )
            try:
                for provider in ("plaid", "snaptrade"):
                    cases.append(run_refused_case(services, refused, provider))
            finally:
                refused.close()
            cases.sort(key=lambda row: row["provider"] != "plaid")
            recovery = outage(services, emulator, clock, outage_minutes, every_s)
        finally:
            if services is not None:
                services.close()
            emulator.stop()
    return {"fault_kinds": cases, "outage": recovery}


def markdown(results: dict[str, Any], database: str) -> str:
    lines = [
        f"Explicit refresh (`refresh_provider`) under each fault, on every call of the "
        f'endpoint unless "once" ({database}; warm cache; retry policy: 3 attempts, back-off '
        f"0.5 s x 2^n with jitter, Retry-After honoured; timeout {TIMEOUT_SECONDS:g} s):",
        "",
        "| provider | fault | provider calls | wall time | answer | "
        "cached rows unchanged | connection marked |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["fault_kinds"]:
        unchanged = {True: "yes", False: "NO", None: "(replaced by fresh rows)"}[
            row["rows_unchanged"]
        ]
        lines.append(
            f"| {row['provider']} | {row['fault']} | {row['calls']} for {row['sources']} "
            f"{row['source_name']} | "
            f"{row['seconds']:g} s | {row['outcome']} | {unchanged} | "
            f"{', '.join(row['connections_marked']) or '-'} |"
        )
    o = results["outage"]
    during = o["calls_during_outage"]
    lines += [
        "",
        f"Outage with an expired cache ({database}): every provider endpoint answers 503 for "
        f"{o['outage_minutes']} min while a read comes every {o['read_every_seconds']} s "
        "(injected clock):",
        "",
        "| outage figure | value |",
        "|---|---|",
        f"| reads during the outage / answered / stale with warning / exceptions | "
        f"{o['reads_during_outage']} / {o['answered']} / {o['answered_stale_with_warning']} / "
        f"{o['exceptions']} |",
        f"| read wall time during the outage, p50 / max (max = a read that retried) | "
        f"{o['read_wall_ms']['p50']} / {o['read_wall_ms']['max']} ms |",
        f"| Plaid holdings calls per Item during the outage | "
        f"{during['plaid_holdings_calls_per_item']:g} |",
        f"| provider calls during the outage: Plaid (all endpoints) / SnapTrade (all "
        f"endpoints; its account list fails first) | {during['plaid_calls']} / "
        f"{during['snaptrade_calls']} |",
        f"| cached rows unchanged through the outage | "
        f"{'yes' if o['cached_rows_unchanged'] else 'NO'} |",
        f"| outage end to fresh data, automatic reads only (back-off {o['backoff_minutes']:g} "
        f"min) | {_minutes(o['minutes_from_outage_end_to_fresh_automatic'])} "
        f"({o['automatic_reads_to_fresh_after_outage']} reads) |",
        f"| outage end to fresh data, one explicit refresh of Plaid ({PLAID_LATENCY:g} s "
        f"latency per Item; automatic reads were still backing off: "
        f"{'yes' if o['read_after_outage_still_backing_off'] else 'no'}) | "
        f"{o['explicit_refresh_after_outage_seconds']:g} s "
        f"({'fresh' if o['explicit_refresh_ok'] else 'FAILED'}) |",
    ]
    return "\n".join(lines)


def _minutes(value: float | None) -> str:
    return "not within an hour" if value is None else f"{value:g} min"


def database_server() -> str | None:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or None


def run_on(kind: str) -> dict[str, Any]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bh-faults-db-") as folder:
            return run(f"sqlite:///{folder}/faults.db")
    from services.db import temporary_postgres_database

    server = database_server()
    if not server:
        raise SystemExit("postgres needs BENCH_DATABASE_URL or TEST_DATABASE_URL")
    with temporary_postgres_database(server, "bh_faults") as url:
        return run(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default=None,
        help="default: postgres when BENCH_DATABASE_URL or TEST_DATABASE_URL is set",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    kind = args.database or ("postgres" if database_server() else "sqlite")
    results = run_on(kind)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({kind: results}, indent=2, default=str))
    print(markdown(results, kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
