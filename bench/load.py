"""Load harness: the web app under gunicorn on Postgres, the emulator with latency.

    python -m bench.load [--duration 60] [--clients 16] [--workers 4] [--threads 4]

What it does, all on loopback, every process stopped at the end (also on failure):

1. starts the emulator standalone (``python -m sandbox --port 0 --state <tmp>
   --allow-admin``) and sets provider latency over its HTTP switch: Plaid holdings 1.5 s per Item,
   SnapTrade positions 0.8 s per account;
2. creates a throwaway Postgres database (``temporary_postgres_database`` on the
   server named by ``--database-server``, BENCH_DATABASE_URL or TEST_DATABASE_URL)
   and migrates it: nothing is cached, so every cache starts expired;
3. sets a known password with ``flask --app app set-password`` (passed in the
   environment, never on a command line), then starts ``gunicorn 'app:create_app()'``
   with ``--workers`` workers on 127.0.0.1 and waits until each worker has loaded
   the app;
4. ``--clients`` clients (threads, urllib3 with keep-alive) log in once each and then
   call ``GET /api/positions?format=summary`` back to back for ``--duration`` seconds;
5. reads the emulator's call counts: the run passes only if there was exactly one
   holdings call per Plaid Item and one positions call per SnapTrade account for
   the whole run, and no request failed or came back degraded (stale or with an
   error).

Prints a Markdown table, writes JSON with ``--json PATH``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# After the path fix, for ``python bench/load.py``. The pieces live in load_app,
# load_clients and load_figures; their names stay importable from here.
from bench.load_app import app_environment, gunicorn, set_password  # noqa: E402
from bench.load_clients import run_clients  # noqa: E402
from bench.load_figures import LoadConfig, LoadResult, markdown, summarize  # noqa: E402
from bench.processes import standalone_emulator  # noqa: E402

__all__ = [
    "LoadConfig",
    "LoadResult",
    "app_environment",
    "markdown",
    "run_load",
    "run_on_temporary_database",
]

PLAID_HOLDINGS = "plaid /investments/holdings/get"
SNAPTRADE_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
SECRET_KEY_BYTES = 32


def run_load(database_url: str, config: LoadConfig, *, python: str = sys.executable) -> LoadResult:
    """One bounded load run against ``database_url`` (migrated here; must start uncached)."""
    import secrets

    from sandbox import data, demo
    from services.storage.db import make_engine, upgrade_schema

    engine = make_engine(database_url)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()
    password = secrets.token_urlsafe(18)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bh-load-")))
        _, emulator = stack.enter_context(
            standalone_emulator(python, folder / "emulator-state.json", os.environ)
        )
        emulator.set_latency(PLAID_HOLDINGS, config.plaid_latency)
        emulator.set_latency(SNAPTRADE_POSITIONS, config.snaptrade_latency)
        env = app_environment(
            database_url, folder / "instance", emulator, secrets.token_hex(SECRET_KEY_BYTES)
        )
        set_password(python, env, password, config.boot_timeout)
        base_url = stack.enter_context(gunicorn(python, env, config))
        samples, elapsed = run_clients(base_url, demo.DEMO_USER_EMAIL, password, config)
        plaid_calls = {
            slug: emulator.calls(PLAID_HOLDINGS, token)
            for slug, token in demo.PLAID_ACCESS_TOKENS.items()
        }
        snaptrade_calls = {
            key: emulator.calls(SNAPTRADE_POSITIONS, account_id)
            for key, account_id in data.SNAPTRADE_ACCOUNT_IDS.items()
        }
        totals = (emulator.calls(PLAID_HOLDINGS), emulator.calls(SNAPTRADE_POSITIONS))
        all_calls = emulator.calls()
    return summarize(config, samples, elapsed, plaid_calls, snaptrade_calls, totals, all_calls)


def database_server() -> str | None:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or None


def run_on_temporary_database(server_url: str, config: LoadConfig) -> LoadResult:
    from services.storage.db import temporary_postgres_database

    with temporary_postgres_database(server_url, "bh_load") as url:
        return run_load(url, config)


def _terminate_as_exit(signum: int, _frame: Any) -> None:
    # SIGTERM unwinds like Ctrl-C, so every child is stopped and the database dropped.
    raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, LoadConfig]:
    defaults = LoadConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds")
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
    parser.add_argument("--plaid-latency", type=float, default=defaults.plaid_latency)
    parser.add_argument("--snaptrade-latency", type=float, default=defaults.snaptrade_latency)
    parser.add_argument(
        "--database-server",
        default=None,
        help="Postgres server URL (default: BENCH_DATABASE_URL or TEST_DATABASE_URL); "
        "a throwaway database is created on it and dropped afterwards",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 3600 or args.clients < 1 or args.workers < 1 or args.threads < 1:
        parser.error("duration must be in (0, 3600] s; clients, workers, threads at least 1")
    config = LoadConfig(
        duration=args.duration,
        clients=args.clients,
        workers=args.workers,
        threads=args.threads if args.worker_class == "gthread" else 1,
        worker_class=args.worker_class,
        plaid_latency=args.plaid_latency,
        snaptrade_latency=args.snaptrade_latency,
    )
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    server = args.database_server or database_server()
    if not server:
        print(
            "bench.load needs Postgres (the single flight across gunicorn workers is a "
            "Postgres advisory lock): set BENCH_DATABASE_URL or TEST_DATABASE_URL",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _terminate_as_exit)
    result = run_on_temporary_database(server, config)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    print(markdown(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
