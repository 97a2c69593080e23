"""``make bench``: the performance figures quoted in the README, in one run.

Figures, not assertions. Everything runs on loopback against the emulator, on
SQLite and, when BENCH_DATABASE_URL or TEST_DATABASE_URL names a Postgres server,
on Postgres too (a throwaway database, dropped at the end). Markdown on stdout,
everything in ``bench-output/results.json``:

1. warm ``get_positions`` over stdio, our server against a bare MCPServer
   answering the same payload (``bench/stdio.py``), at the demo's 46 positions
   and at 500;
2. the service alone as the portfolio grows, 46 to 20,000 positions: warm and
   first (cold) read, answer sizes (``bench/growth.py``);
3. the load harness: gunicorn on Postgres, 16 clients (``bench/load.py``; the run
   fails unless there was exactly one fetch per Item and account and no error);
4. and 5. the activity history (``bench/activities.py``), at the demo's synced history
   and at 5,000 activities: ``get_activities`` and ``get_income`` in the service alone,
   then over stdio against a bare MCPServer answering the same payload;

then the other figures: a live fetch, cold start, a simulated week of provider
calls (``bench/cache.py``), a simulated week with webhooks against lifetimes alone
(``bench/webhook_week.py``), and fault recovery (``bench/faults.py``).

    python -m bench [--stdio-repeat 300] [--sizes 46,500,5000,20000] [--load-seconds 60]
                    [--activity-sizes 5000] [--only sqlite|postgres]
                    [--no-positions] [--no-activities] [--no-load] [--no-faults]
                    [--no-webhooks]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (  # also puts the project root on sys.path
    ROOT,
    Clock,
    build,
    database,
    database_server,
    emulated,
    set_portfolio_size,
    stdio_env,
)

DEMO = 46  # the demo portfolio's positions: the first size of every table


def bench_database(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Tables 1 and 2 and the cache figures on one database."""
    from bench import cache, growth, stdio

    figures: dict[str, Any] = {"stdio": [], "growth": []}
    with database(kind) as url, tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        with emulated(instance, latency=True) as emulator:
            services = build(url, emulator, Clock(), instance)
            try:
                figures["live_fetch_ms"] = cache.live_fetch(services, args.live_repeat)
                env = stdio_env(url, instance, emulator)
                demo_size = len(services.positions.get_cached_positions())
                for size in sorted(set(args.sizes) | set(args.stdio_sizes)):
                    target = demo_size if size == DEMO else size
                    if size in args.sizes:
                        progress(f"{kind}: the service alone at {target} positions")
                        figures["growth"].append(
                            growth.measure(
                                services, target, repeat=args.repeat, cold_repeat=args.cold_repeat
                            )
                        )
                    if size in args.stdio_sizes:
                        set_portfolio_size(services, target)
                        progress(f"{kind}: over stdio at {target} positions")
                        figures["stdio"].append(
                            stdio.compare_with_bare(env, positions=target, repeat=args.stdio_repeat)
                        )
                demo = figures["growth"][0]["formats"]["summary"]["warm_ms"]["p50"]
                figures["cached_over_live"] = round(demo / figures["live_fetch_ms"]["p50"], 5)
                progress(f"{kind}: cold start")
                figures["cold_start"] = stdio.cold_start_ratio(env, args.cold_runs)
            finally:
                services.close()
        progress(f"{kind}: simulated week")
        figures["simulated_week_200_calls_a_day"] = cache.simulated_week(
            kind, instance, calls_per_day=200, uncached_days=args.uncached_days
        )
    return figures


def activity_sections(
    kinds: list[str], args: argparse.Namespace, results: dict[str, Any]
) -> tuple[list[str], bool]:
    """Tables 4 and 5 on every database; a failure is reported (and fails the run)
    without losing the tables already measured."""
    from bench import activities

    per_kind: dict[str, Any] = {}
    try:
        for kind in kinds:
            per_kind[kind] = activities.run_on(
                kind,
                args.activity_sizes,
                repeat=args.repeat,
                stdio_repeat=args.stdio_repeat,
                progress=progress,
            )
    except Exception as exc:
        results["activities"] = {**per_kind, "error": repr(exc)}
        return [f"### 4. Activity history\n\nFAILED: {exc!r}"], False
    results["activities"] = per_kind
    return [
        "### 4. The activity history alone (`ActivityViews`, in process, warm)\n\n"
        + activities.markdown_service(per_kind),
        "### 5. `get_activities` and `get_income` over stdio: ours against a bare MCPServer, "
        "same payload\n\n" + activities.markdown_stdio(per_kind),
    ], True


def load_section(
    load: Any, server: str, args: argparse.Namespace, results: dict[str, Any]
) -> tuple[str, bool]:
    """Table 3: the load harness on a throwaway Postgres database; a failure is reported
    (and fails the run) without losing the tables already measured."""
    config = load.LoadConfig(duration=args.load_seconds, clients=args.load_clients)
    before = round(os.getloadavg()[0], 2)
    try:
        outcome = load.run_on_temporary_database(server, config)
    except Exception as exc:
        results["load"] = {"error": repr(exc), "load_average_1min_before": before}
        return f"### 3. Load (gunicorn, Postgres)\n\nFAILED: {exc}", False
    results["load"] = {**outcome.to_dict(), "load_average_1min_before": before}
    section = (
        "### 3. Load (gunicorn, Postgres)\n\n"
        + load.markdown(outcome)
        + f"\n\n1-minute load average before the run: {before}."
    )
    return section, outcome.ok


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other busy processes skew every figure: the load average says if any ran.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def sizes(text: str) -> list[int]:
    return sorted({int(part) for part in text.split(",") if part.strip()})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=200,
        help="warm reads per figure of the service alone (tables 2 and 4)",
    )
    parser.add_argument(
        "--stdio-repeat",
        type=int,
        default=300,
        help="calls per server and format (table 1) or call (table 5) over stdio, "
        "in 6 interleaved rounds",
    )
    parser.add_argument(
        "--sizes",
        type=sizes,
        default=[DEMO, 500, 5000, 20000],
        help="portfolio sizes for the service alone (46 is the demo; default 46,500,5000,20000)",
    )
    parser.add_argument(
        "--stdio-sizes",
        type=sizes,
        default=[DEMO, 500],
        help="portfolio sizes over stdio (default 46,500)",
    )
    parser.add_argument(
        "--cold-repeat", type=int, default=3, help="first (view-building) reads per figure"
    )
    parser.add_argument("--live-repeat", type=int, default=3, help="live fetches timed")
    parser.add_argument("--cold-runs", type=int, default=5, help="MCP server starts timed")
    parser.add_argument(
        "--uncached-days",
        type=int,
        default=1,
        help="days of the no-cache week to run (1-7; counts are scaled to 7). "
        "Every uncached read is a live fetch: a full week takes ~2.5 min per database",
    )
    parser.add_argument(
        "--activity-sizes",
        type=sizes,
        default=[5000],
        help="activities stored for tables 4 and 5, beyond the demo's synced history "
        "(always the first row; default 5000)",
    )
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--load-seconds", type=float, default=60.0, help="length of the gunicorn load run"
    )
    parser.add_argument("--load-clients", type=int, default=16)
    parser.add_argument(
        "--no-positions", action="store_true", help="skip tables 1 and 2 and the cache figures"
    )
    parser.add_argument(
        "--no-activities", action="store_true", help="skip tables 4 and 5 (activity history)"
    )
    parser.add_argument("--no-load", action="store_true", help="skip the gunicorn load run")
    parser.add_argument("--no-faults", action="store_true", help="skip fault recovery")
    parser.add_argument(
        "--no-webhooks", action="store_true", help="skip the simulated week with webhooks"
    )
    args = parser.parse_args(argv)
    if DEMO not in args.sizes:
        args.sizes = [DEMO, *args.sizes]  # the growth is read against the demo
    if any(size < DEMO for size in args.sizes + args.stdio_sizes):
        parser.error(f"sizes start at the demo's {DEMO} positions")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import logging
    import signal

    from bench import cache, faults, growth, load, stdio

    # SIGTERM unwinds like Ctrl-C: children stopped, temporary databases dropped.
    signal.signal(signal.SIGTERM, load._terminate_as_exit)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = database_server()
    kinds = ["sqlite", "postgres"] if server else ["sqlite"]
    if args.only:
        kinds = [args.only]
    results: dict[str, Any] = {"machine": machine()}
    sections: list[str] = []
    status = 0
    if not args.no_positions:
        per_kind = {kind: bench_database(kind, args) for kind in kinds}
        results["positions"] = per_kind
        results["growth_targets"] = {k: growth.targets(f["growth"]) for k, f in per_kind.items()}
        sections.append(
            "### 1. Warm `get_positions` over stdio: ours against a bare MCPServer, same payload"
            "\n\n" + stdio.markdown({k: f["stdio"] for k, f in per_kind.items()})
        )
        sections.append(
            "### 2. The service alone as the portfolio grows (`PositionViews.answer`, in process)"
            "\n\n" + growth.markdown({k: f["growth"] for k, f in per_kind.items()})
        )
    later: list[str] = []  # tables 4 and 5: measured before the load run, printed after it
    if not args.no_activities:
        later, ok = activity_sections(kinds, args, results)
        status = status if ok else 1
    if not args.no_load:
        if server:
            progress("load run")
            section, ok = load_section(load, server, args, results)
            sections.append(section)
            status = status if ok else 1
        else:
            sections.append(
                "### 3. Load\n\nskipped: needs Postgres (BENCH_DATABASE_URL or TEST_DATABASE_URL)"
            )
    sections.extend(later)
    if not args.no_positions:
        sections.append("### Cache, cold start, a week of calls\n\n" + cache.markdown(per_kind))
    if not args.no_webhooks:
        from bench import webhook_week

        weeks: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as folder:
            for kind in kinds:
                progress(f"{kind}: a simulated week with webhooks")
                weeks[kind] = webhook_week.run(kind, Path(folder) / kind)
        results["webhook_week"] = weeks
        sections.append(
            "### A week with webhooks, against cache lifetimes alone (24 reads a day)\n\n"
            + webhook_week.markdown(weeks)
        )
    if not args.no_faults:
        kind = "postgres" if server and args.only != "sqlite" else "sqlite"
        progress(f"fault recovery on {kind}")
        try:
            results["fault_recovery"] = {kind: faults.run_on(kind)}
        except Exception as exc:  # the figures already measured are still printed
            results["fault_recovery"] = {kind: {"error": repr(exc)}}
            sections.append(f"### Fault recovery\n\nFAILED: {exc!r}")
            status = 1
        else:
            sections.append(
                "### Fault recovery\n\n" + faults.markdown(results["fault_recovery"][kind], kind)
            )
    box = results["machine"]
    box["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / "bench-output"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    start, end = box["load_average_at_start"], box["load_average_at_end"]
    machine_line = (
        f"Machine: {box['cpus']} CPUs ({box['cpu_model']}), Python {box['python']}, "
        f"{box['system']}. Load average (1, 5, 15 min) {start[0]}, {start[1]}, {start[2]} at "
        f"the start, {end[0]}, {end[1]}, {end[2]} at the end (other busy processes skew the "
        "figures)."
    )
    print("\n\n".join([machine_line, *sections]))
    return status


if __name__ == "__main__":
    sys.exit(main())
