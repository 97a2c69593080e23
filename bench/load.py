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
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.processes import (  # noqa: E402 (after the path fix, for ``python bench/load.py``)
    Child,
    EmulatorAdmin,
    HarnessError,
    standalone_emulator,
)

PLAID_HOLDINGS = "plaid /investments/holdings/get"
SNAPTRADE_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
POSITIONS_PATH = "/api/positions?format=summary"
SESSION_COOKIE = "brokerage_hub_session"
SECRET_KEY_BYTES = 32


@dataclass
class LoadConfig:
    duration: float = 60.0
    clients: int = 16
    workers: int = 4
    threads: int = 4  # per worker (gthread); 1 with --worker-class sync
    worker_class: str = "gthread"
    plaid_latency: float = 1.5
    snaptrade_latency: float = 0.8
    request_timeout: float = 30.0
    boot_timeout: float = 60.0


@dataclass
class Sample:
    started: float  # monotonic
    seconds: float
    ok: bool
    problem: str | None = None


@dataclass
class LoadResult:
    config: dict[str, Any]
    requests: int
    errors: int
    degraded: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    first_answer_ms: float
    plaid_holdings_calls: dict[str, int]
    snaptrade_positions_calls: dict[str, int]
    all_provider_calls: int
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "requests": self.requests,
            "errors": self.errors,
            "degraded": self.degraded,
            "requests_per_second": self.requests_per_second,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "first_answer_ms": self.first_answer_ms,
            "plaid_holdings_calls_per_item": self.plaid_holdings_calls,
            "snaptrade_positions_calls_per_account": self.snaptrade_positions_calls,
            "all_provider_calls": self.all_provider_calls,
            "problems": self.problems,
            "ok": self.ok,
            "failures": self.failures,
        }


# --- the web app under gunicorn --------------------------------------------------------


def app_environment(
    database_url: str, instance: Path, emulator: EmulatorAdmin, secret_key: str
) -> dict[str, str]:
    from sandbox import demo

    env = {
        key: value
        for key, value in os.environ.items()
        # The harness decides these; whatever the caller's shell says is dropped.
        if not key.startswith(("PLAID_", "SNAPTRADE_", "SECRETS_", "DATABASE_", "PROVIDER_"))
    }
    # Every setting the run depends on is set here, also to its default, so a .env
    # file beside settings.py (read with override=False) cannot change the experiment.
    env.update(
        DATABASE_URL=database_url,
        INSTANCE_DIR=str(instance),
        DEFAULT_USER_EMAIL=demo.DEMO_USER_EMAIL,
        PLAID_ENV="emulator",
        SNAPTRADE_ENV="emulator",
        PLAID_BASE_URL=emulator.plaid_url,
        SNAPTRADE_BASE_URL=emulator.snaptrade_url,
        PLAID_CLIENT_ID="",
        PLAID_SECRET="",
        SNAPTRADE_CLIENT_ID="",
        SNAPTRADE_CONSUMER_KEY="",
        PLAID_CACHE_HOURS="72",
        SNAPTRADE_CACHE_HOURS="24",
        PROVIDER_TIMEOUT_SECONDS="20",
        PROVIDER_RETRY_ATTEMPTS="3",
        SECRETS_BACKEND="local",
        SECRET_KEY=secret_key,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def set_password(python: str, env: dict[str, str], password: str, timeout: float) -> None:
    """``flask --app app set-password`` with the password in its environment (not argv)."""
    child = Child(
        "set-password",
        [python, "-m", "flask", "--app", "app", "set-password"],
        {**env, "BROKERAGE_HUB_NEW_PASSWORD": password},
    )
    try:
        child.wait_for_line(r"^password set for ", timeout)
        if child.process.wait(timeout=timeout) != 0:
            raise HarnessError(f"set-password failed:\n{child.tail()}")
    finally:
        child.stop()


@contextmanager
def gunicorn(python: str, env: dict[str, str], config: LoadConfig) -> Iterator[str]:
    """``gunicorn 'app:create_app()'`` on 127.0.0.1 (a free port); yields its base URL."""
    args = [
        python,
        "-m",
        "gunicorn",
        "--bind",
        "127.0.0.1:0",  # the kernel picks a free port; gunicorn prints which
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        "--config",
        "python:bench.gunicorn_conf",
        "app:create_app()",
    ]
    if config.worker_class == "gthread":
        args[-1:-1] = ["--threads", str(config.threads)]
    child = Child("gunicorn", args, env)
    try:
        (listening,) = child.wait_for_line(
            r"Listening at: (http://127\.0\.0\.1:\d+)", config.boot_timeout
        )
        from bench.gunicorn_conf import READY_LINE

        child.wait_for_line(re.escape(READY_LINE), config.boot_timeout, count=config.workers)
        yield listening.group(1)
    finally:
        child.stop()


# --- the clients ---------------------------------------------------------------------


class WebClient:
    """One browser-like client: its own keep-alive connection and session cookie."""

    def __init__(self, base_url: str, timeout: float) -> None:
        import urllib3

        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", base_url)
        if match is None:
            raise ValueError(f"loopback URLs only, not {base_url!r}")
        self._pool = urllib3.HTTPConnectionPool(
            "127.0.0.1",
            int(match.group(1)),
            maxsize=1,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )
        self._cookie = ""

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self._cookie:
            headers["Cookie"] = self._cookie
        response = self._pool.request(method, path, headers=headers, redirect=False, **kwargs)
        for header in response.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == SESSION_COOKIE:
                self._cookie = f"{SESSION_COOKIE}={rest.split(';', 1)[0]}"
        return response

    def log_in(self, email: str, password: str) -> None:
        page = self._request("GET", "/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.data.decode())
        if page.status != 200 or found is None:
            raise HarnessError(f"GET /login answered {page.status} without a CSRF token")
        answer = self._request(
            "POST",
            "/login",
            body=urlencode({"email": email, "password": password, "csrf_token": found[1]}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if answer.status != 303:
            raise HarnessError(f"POST /login answered {answer.status}, not 303")

    def positions(self) -> Sample:
        started = time.monotonic()
        try:
            response = self._request("GET", POSITIONS_PATH)
            seconds = time.monotonic() - started
            if response.status != 200:
                return Sample(started, seconds, False, f"HTTP {response.status}")
            return Sample(started, seconds, *_check_answer(json.loads(response.data)))
        except Exception as exc:  # any failure is counted and reported, never raised
            return Sample(started, time.monotonic() - started, False, type(exc).__name__)

    def close(self) -> None:
        self._pool.close()


def _check_answer(payload: dict[str, Any]) -> tuple[bool, str | None]:
    """A complete answer: both providers fresh (not stale, no error) and positions present."""
    info = payload.get("cache_info") or {}
    for provider in ("plaid", "snaptrade"):
        entry = info.get(provider)
        if not entry:
            return False, f"degraded: no cache_info for {provider}"
        if entry.get("stale") or entry.get("error"):
            return False, f"degraded: {provider} stale={entry.get('stale')}"
    if not payload.get("position_count"):
        return False, "degraded: no positions"
    return True, None


def run_clients(
    base_url: str, email: str, password: str, config: LoadConfig
) -> tuple[list[Sample], float]:
    """Log every client in, then load for ``config.duration`` seconds; (samples, elapsed)."""
    clients = [WebClient(base_url, config.request_timeout) for _ in range(config.clients)]
    per_client: list[list[Sample]] = [[] for _ in clients]
    login_errors: list[BaseException] = []
    window: dict[str, float] = {}

    def open_window() -> None:
        # Runs once, before any party is released: every client sees the same window.
        window["start"] = time.monotonic()
        window["end"] = window["start"] + config.duration

    go = threading.Barrier(config.clients + 1, action=open_window, timeout=config.boot_timeout)
    # One login at a time, as people would: the login brake counts a check in flight
    # against its address, so 16 simultaneous logins from one address would be braked.
    one_login_at_a_time = threading.Lock()

    def client_main(index: int) -> None:
        client = clients[index]
        try:
            with one_login_at_a_time:
                client.log_in(email, password)
        except BaseException as exc:
            login_errors.append(exc)
            go.abort()
            return
        try:
            go.wait()
        except threading.BrokenBarrierError:
            return
        end = window["end"]
        samples = per_client[index]
        while time.monotonic() < end:
            samples.append(client.positions())

    threads = [
        threading.Thread(target=client_main, args=(i,), name=f"load-client-{i}", daemon=True)
        for i in range(config.clients)
    ]
    for thread in threads:
        thread.start()
    try:
        # Every client is logged in before the clock starts: the window is positions only.
        try:
            go.wait()
        except threading.BrokenBarrierError:
            raise HarnessError(f"a client could not log in: {login_errors[:1]}") from None
        for thread in threads:
            thread.join(timeout=config.duration + config.request_timeout + 10)
        if any(thread.is_alive() for thread in threads):
            raise HarnessError("a client did not finish within its request timeout")
    finally:
        for client in clients:
            client.close()
    samples = [sample for batch in per_client for sample in batch]
    finished = max((s.started + s.seconds for s in samples), default=window["start"])
    return samples, finished - window["start"]


# --- one run -------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_load(database_url: str, config: LoadConfig, *, python: str = sys.executable) -> LoadResult:
    """One bounded load run against ``database_url`` (migrated here; must start uncached)."""
    import secrets

    from sandbox import data, demo
    from services.db import make_engine, upgrade_schema

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


def summarize(
    config: LoadConfig,
    samples: list[Sample],
    elapsed: float,
    plaid_calls: dict[str, int],
    snaptrade_calls: dict[str, int],
    totals: tuple[int, int],
    all_calls: int,
) -> LoadResult:
    seconds = [s.seconds for s in samples] or [0.0]
    failed = [s for s in samples if not s.ok]
    degraded = [s for s in failed if (s.problem or "").startswith("degraded")]
    problems = sorted({s.problem or "?" for s in failed})
    first = min(samples, key=lambda s: s.started + s.seconds) if samples else None
    result = LoadResult(
        config=config.__dict__.copy(),
        requests=len(samples),
        errors=len(failed) - len(degraded),
        degraded=len(degraded),
        requests_per_second=round(len(samples) / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(statistics.median(seconds) * 1000, 1),
        p99_ms=round(percentile(seconds, 99) * 1000, 1),
        max_ms=round(max(seconds) * 1000, 1),
        first_answer_ms=round(first.seconds * 1000, 1) if first else 0.0,
        plaid_holdings_calls=plaid_calls,
        snaptrade_positions_calls=snaptrade_calls,
        all_provider_calls=all_calls,
        problems=problems[:10],
    )
    if not samples:
        result.failures.append("no request completed")
    if failed:
        result.failures.append(
            f"{result.errors} errors and {result.degraded} degraded answers: {problems[:3]}"
        )
    for name, calls in {**plaid_calls, **snaptrade_calls}.items():
        if calls != 1:
            result.failures.append(f"{name}: {calls} provider fetches, expected exactly 1")
    expected = (len(plaid_calls), len(snaptrade_calls))
    if totals != expected:
        result.failures.append(
            f"holdings / positions calls in all {totals}, expected {expected} (one per source)"
        )
    return result


def markdown(result: LoadResult) -> str:
    c = result.config
    setup = (
        f"gunicorn {c['workers']} workers ({c['worker_class']}"
        + (f", {c['threads']} threads" if c["worker_class"] == "gthread" else "")
        + f"), {c['clients']} clients, {c['duration']:g} s"
    )
    plaid = ", ".join(f"{k} {v}" for k, v in result.plaid_holdings_calls.items())
    snaptrade = ", ".join(f"{k} {v}" for k, v in result.snaptrade_positions_calls.items())
    rows = [
        ("setup", setup),
        ("requests (GET /api/positions?format=summary)", f"{result.requests}"),
        ("requests per second", f"{result.requests_per_second:g}"),
        ("latency p50 / p99 / max", f"{result.p50_ms} / {result.p99_ms} / {result.max_ms} ms"),
        ("first answer (waits for the live fetch)", f"{result.first_answer_ms} ms"),
        ("errors / degraded answers", f"{result.errors} / {result.degraded}"),
        ("Plaid holdings calls per Item", plaid),
        ("SnapTrade positions calls per account", snaptrade),
        ("every provider call of the run", f"{result.all_provider_calls}"),
        ("verdict", "pass" if result.ok else "FAIL: " + "; ".join(result.failures)),
    ]
    lines = ["| load figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def database_server() -> str | None:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or None


def run_on_temporary_database(server_url: str, config: LoadConfig) -> LoadResult:
    from services.db import temporary_postgres_database

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
