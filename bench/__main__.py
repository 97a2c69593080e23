"""``make bench``: the performance figures quoted in the README.

Figures, not assertions. Everything runs on loopback against the emulator with
injected provider latency (Plaid holdings 1.5 s per Item, SnapTrade positions
0.8 s per account), on SQLite and, when BENCH_DATABASE_URL or TEST_DATABASE_URL
names a Postgres server, on Postgres too. Results go to stdout as a Markdown
table and to ``bench-output/results.json``.

Then, unless skipped: the load run (``bench/load.py``: gunicorn with 4 workers on
a throwaway Postgres database, 60 s of ``GET /api/positions`` from expired
caches; it fails the run unless there was exactly one fetch per Item and
account and no error) and the fault recovery figures (``bench/faults.py``).

    python -m bench [--load-seconds 60] [--uncached-days 1] [--no-load] [--no-faults]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAID_LATENCY = 1.5
SNAPTRADE_LATENCY = 0.8


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    from services.db import temporary_postgres_database

    server = os.environ.get("BENCH_DATABASE_URL") or os.environ["TEST_DATABASE_URL"]
    with temporary_postgres_database(server, "bh_bench") as url:
        yield url


def build(database_url: str, emulator: Any, clock: Clock, instance: Path) -> Any:
    from services.composition import build_services
    from services.db import make_engine, upgrade_schema
    from settings import load_settings

    settings = load_settings(
        {"DATABASE_URL": database_url, "INSTANCE_DIR": str(instance), "LOG_LEVEL": "WARNING"},
        use_dotenv=False,
    )
    upgrade_schema(make_engine(database_url))
    return build_services(settings, clock=clock, emulator=emulator)


def add_synthetic_positions(services: Any, count: int) -> None:
    """Pad the Plaid cache to ``count`` rows (what a large portfolio looks like)."""
    from sqlalchemy import insert, select

    from services.models import PositionRow

    table = PositionRow.__table__
    with services.engine.begin() as conn:
        template = dict(conn.execute(select(table).limit(1)).mappings().one())
        have = len(conn.execute(select(table.c.id)).all())
        template.pop("id")
        rows = [{**template, "ticker": f"SYN{i:04d}"} for i in range(count - have)]
        if rows:
            conn.execute(insert(table), rows)


def time_calls(call: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


async def _in_process_samples(services: Any, repeat: int, fmt: str) -> list[float]:
    import mcp

    from mcp_server import build_server

    samples = []
    async with mcp.Client(build_server(services)) as client:
        await client.call_tool("get_positions", {"format": fmt})  # warm
        for _ in range(repeat):
            started = time.perf_counter()
            result = await client.call_tool("get_positions", {"format": fmt})
            samples.append(time.perf_counter() - started)
            assert not result.is_error
    return samples


def stdio_env(database_url: str, instance: Path, emulator: Any) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_DIR": str(instance),
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
    }


async def _stdio_samples(env: dict[str, str], repeat: int, fmt: str) -> list[float]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=[str(ROOT / "mcp_server.py")], env=env
    )
    samples = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("get_positions", {"format": fmt})  # warm
        for _ in range(repeat):
            started = time.perf_counter()
            result = await session.call_tool("get_positions", {"format": fmt})
            samples.append(time.perf_counter() - started)
            assert not result.is_error
    return samples


BARE_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer(name="bare")
@server.tool()
def ping() -> str:
    return "pong"
server.run("stdio")
"""


async def _cold_start(command: list[str], env: dict[str, str]) -> float:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()
        return time.perf_counter() - started


def cold_start_ratio(env: dict[str, str], runs: int) -> dict[str, float]:
    ours, bare = [], []
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(BARE_SERVER)
    for _ in range(runs):
        ours.append(anyio.run(_cold_start, [sys.executable, str(ROOT / "mcp_server.py")], env))
        bare.append(anyio.run(_cold_start, [sys.executable, handle.name], env))
    os.unlink(handle.name)
    ours_ms, bare_ms = ms(statistics.median(ours)), ms(statistics.median(bare))
    return {"ours_ms": ours_ms, "bare_ms": bare_ms, "ratio": round(ours_ms / bare_ms, 2)}


def simulated_week(
    kind: str, instance: Path, calls_per_day: int, uncached_days: int = 7
) -> dict[str, Any]:
    """Provider calls for a week of ``calls_per_day`` reads, with and without the cache.

    The cached week is always run in full. Without a cache every read is a live
    fetch (one call per Item and account, a few seconds of work each on this
    emulator), so ``uncached_days`` < 7 runs that many days and scales the counts
    to the week; the JSON keeps what was measured and over how many days.
    """
    from sandbox.server import start_emulator

    results: dict[str, Any] = {}
    for cached in (True, False):
        days = 7 if cached else max(1, min(7, uncached_days))
        clock = Clock()
        emulator = start_emulator(port=0, state_path=instance / f"week-{cached}.json")
        with database(kind) as database_url:
            services = build(database_url, emulator, clock, instance / f"week-{cached}")
            _run_week(services, clock, calls_per_day, cached, days)
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
        emulator.stop()
    return results


def _run_week(services: Any, clock: Clock, calls_per_day: int, cached: bool, days: int = 7) -> None:

    step = timedelta(days=1) / calls_per_day
    for _ in range(calls_per_day * days):
        if cached:
            services.position_views.answer("summary")
        else:
            services.positions.get_all_positions(use_cache=False)
        clock.now += step


def bench_database(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from sandbox.server import start_emulator

    figures: dict[str, Any] = {}
    with database(kind) as url, tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        clock = Clock()
        emulator = start_emulator(port=0, state_path=instance / "emulator.json")
        emulator.controls.set_latency("plaid /investments/holdings/get", PLAID_LATENCY)
        emulator.controls.set_latency(
            "snaptrade /accounts/{accountId}/positions/all", SNAPTRADE_LATENCY
        )
        services = build(url, emulator, clock, instance)

        live = time_calls(
            lambda: services.positions.get_all_positions(force_refresh=True), args.live_repeat
        )
        figures["live_fetch_ms"] = {"p50": ms(statistics.median(live))}

        for label, size in (("demo", None), ("500_positions", 500)):
            if size:
                add_synthetic_positions(services, size)
            samples = anyio.run(_in_process_samples, services, args.repeat, "full")
            direct = time_calls(lambda: services.position_views.answer("full"), args.repeat)
            env = stdio_env(url, instance, emulator)
            stdio = anyio.run(_stdio_samples, env, args.repeat, "full")
            figures[label] = {
                "positions": len(services.positions.get_all_positions().positions),
                "service_call_ms": {
                    "p50": ms(percentile(direct, 50)),
                    "p95": ms(percentile(direct, 95)),
                },
                "in_process_tool_ms": {
                    "p50": ms(percentile(samples, 50)),
                    "p95": ms(percentile(samples, 95)),
                },
                "stdio_tool_ms": {
                    "p50": ms(percentile(stdio, 50)),
                    "p95": ms(percentile(stdio, 95)),
                },
            }
        demo = figures["demo"]
        figures["cached_over_live"] = round(
            demo["in_process_tool_ms"]["p50"] / figures["live_fetch_ms"]["p50"], 5
        )
        figures["cold_start"] = cold_start_ratio(stdio_env(url, instance, emulator), args.cold_runs)
        services.close()
        emulator.stop()
        emulator_week = simulated_week(
            kind, instance, calls_per_day=200, uncached_days=args.uncached_days
        )
        figures["simulated_week_200_calls_a_day"] = emulator_week
    return figures


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| database | figure | value |",
        "|---|---|---|",
    ]
    for kind, f in results.items():
        for label in ("demo", "500_positions"):
            row = f[label]
            lines.append(
                f"| {kind} | get_positions cached, {row['positions']} positions, in-process tool "
                f"call p50 / p95 | {row['in_process_tool_ms']['p50']} / "
                f"{row['in_process_tool_ms']['p95']} ms |"
            )
            lines.append(
                f"| {kind} | same, over stdio p50 / p95 | {row['stdio_tool_ms']['p50']} / "
                f"{row['stdio_tool_ms']['p95']} ms |"
            )
            lines.append(
                f"| {kind} | same, service call only p50 / p95 | "
                f"{row['service_call_ms']['p50']} / {row['service_call_ms']['p95']} ms |"
            )
        lines.append(
            f"| {kind} | live fetch (cache expired), p50 | {f['live_fetch_ms']['p50']} ms |"
        )
        lines.append(f"| {kind} | cached / live | {f['cached_over_live']} |")
        cold = f["cold_start"]
        lines.append(
            f"| {kind} | MCP cold start to tools/list: ours / bare MCPServer | "
            f"{cold['ours_ms']} / {cold['bare_ms']} ms = {cold['ratio']}x |"
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


def machine() -> dict[str, Any]:
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other busy processes skew every figure: the 1-minute load average says if any ran.
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--live-repeat", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument(
        "--uncached-days",
        type=int,
        default=1,
        help="days of the no-cache week to run (1-7; counts are scaled to 7). "
        "Every uncached read is a live fetch: a full week takes ~2.5 min per database",
    )
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--load-seconds", type=float, default=60.0, help="length of the gunicorn load run"
    )
    parser.add_argument("--load-clients", type=int, default=16)
    parser.add_argument("--no-positions", action="store_true", help="skip the cache figures")
    parser.add_argument("--no-load", action="store_true", help="skip the gunicorn load run")
    parser.add_argument("--no-faults", action="store_true", help="skip fault recovery")
    args = parser.parse_args()
    import logging
    import signal

    from bench import faults, load

    # SIGTERM unwinds like Ctrl-C: children stopped, temporary databases dropped.
    signal.signal(signal.SIGTERM, load._terminate_as_exit)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    kinds = ["sqlite"]
    if server:
        kinds.append("postgres")
    if args.only:
        kinds = [args.only]
    results: dict[str, Any] = {"machine": machine()}
    sections: list[str] = []
    status = 0
    if not args.no_positions:
        results["positions"] = {kind: bench_database(kind, args) for kind in kinds}
        sections.append("### Cache and MCP\n\n" + markdown(results["positions"]))
    if not args.no_load:
        if server:
            config = load.LoadConfig(duration=args.load_seconds, clients=args.load_clients)
            outcome = load.run_on_temporary_database(server, config)
            results["load"] = outcome.to_dict()
            sections.append("### Load (gunicorn, Postgres)\n\n" + load.markdown(outcome))
            status = 0 if outcome.ok else 1
        else:
            sections.append(
                "### Load\n\nskipped: needs Postgres (BENCH_DATABASE_URL or TEST_DATABASE_URL)"
            )
    if not args.no_faults:
        kind = "postgres" if server and args.only != "sqlite" else "sqlite"
        results["fault_recovery"] = {kind: faults.run_on(kind)}
        sections.append(
            "### Fault recovery\n\n" + faults.markdown(results["fault_recovery"][kind], kind)
        )
    results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    out = ROOT / "bench-output"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    box = results["machine"]
    machine_line = (
        f"Machine: {box['cpus']} CPUs, Python {box['python']}, {box['system']}; 1-minute "
        f"load average {box['load_average_1min_at_start']} at the start, "
        f"{box['load_average_1min_at_end']} at the end (other busy processes skew the figures)."
    )
    print("\n\n".join([machine_line, *sections]))
    return status


if __name__ == "__main__":
    sys.exit(main())
