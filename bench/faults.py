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
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# After the path fix, for ``python bench/faults.py``. The cases live in fault_cases, the
# outage in fault_outage.
from bench.fault_cases import (  # noqa: E402
    PLAID_LATENCY,
    TIMEOUT_SECONDS,
    Clock,
    build,
    closed_port,
    fault_cases,
    run_fault_case,
    run_refused_case,
)
from bench.fault_outage import outage  # noqa: E402


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
    from services.storage.db import temporary_postgres_database

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
