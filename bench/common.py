"""What every part of ``make bench`` shares: databases, the service layer, statistics,
and portfolios of any size.

A portfolio of N positions is the demo's SnapTrade rows plus synthetic Plaid rows,
stored through :class:`services.positions.service.PositionService` with a fetcher
that returns them (:func:`set_portfolio_size`): the rows are replaced in one
transaction that moves Plaid's cache generation, exactly as a real refresh does,
so every process (ours, the stdio server) serves a view of the new rows.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PLAID_LATENCY = 1.5
SNAPTRADE_LATENCY = 0.8
SYNTHETIC_INSTITUTIONS = ("Fidelity", "Vanguard", "E*TRADE")
SYNTHETIC_TYPES = ("equity", "etf", "mutual fund", "fixed income")


class Clock:
    """An injectable clock: the wall clock's time when made, moved only by the caller.

    Starting at the real time matters: a stdio server started by the bench reads the
    same database with the real clock, and must find the rows fresh."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def p50_p95(samples: list[float]) -> dict[str, float]:
    return {"p50": ms(statistics.median(samples)), "p95": ms(percentile(samples, 95))}


def time_calls(call: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def database_server() -> str | None:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or None


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database: a file in a temporary folder, or a throwaway Postgres database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    from services.storage.db import temporary_postgres_database

    server = database_server()
    assert server, "Postgres figures need BENCH_DATABASE_URL or TEST_DATABASE_URL"
    with temporary_postgres_database(server, "bh_bench") as url:
        yield url


def build(database_url: str, emulator: Any, clock: Clock, instance: Path) -> Any:
    """The service layer on ``database_url`` (migrated), talking to ``emulator``."""
    from services.composition import build_services
    from services.storage.db import make_engine, upgrade_schema
    from settings import load_settings

    settings = load_settings(
        {"DATABASE_URL": database_url, "INSTANCE_DIR": str(instance), "LOG_LEVEL": "WARNING"},
        use_dotenv=False,
    )
    engine = make_engine(database_url)
    upgrade_schema(engine)
    engine.dispose()
    return build_services(settings, clock=clock, emulator=emulator)


def stdio_env(database_url: str, instance: Path, emulator: Any) -> dict[str, str]:
    """The environment ``python mcp_server.py`` runs in: the same database and emulator."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_DIR": str(instance),
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def emulated(instance: Path, *, latency: bool = False) -> Iterator[Any]:
    """An emulator in this process (with the providers' latency when ``latency``)."""
    from sandbox.server import start_emulator

    emulator = start_emulator(port=0, state_path=instance / "emulator.json")
    try:
        if latency:
            controls = emulator.controls
            assert controls is not None  # an emulator in this process has its switches here
            controls.set_latency("plaid /investments/holdings/get", PLAID_LATENCY)
            controls.set_latency("snaptrade /accounts/{accountId}/positions/all", SNAPTRADE_LATENCY)
        yield emulator
    finally:
        emulator.stop()


class SyntheticFetcher:
    """A Plaid that answers ``count`` positions over a few institutions and accounts."""

    def __init__(self, count: int, *, accounts: int = 12) -> None:
        self.count, self.accounts = count, accounts

    def __call__(self, *, automatic: bool) -> Any:
        from core.normalized import NormalizedPosition
        from services.positions.fetchers import ProviderFetch

        as_of = datetime.now(UTC).replace(microsecond=0)
        positions = []
        for i in range(self.count):
            account = i % self.accounts
            institution = SYNTHETIC_INSTITUTIONS[account % len(SYNTHETIC_INSTITUTIONS)]
            quantity, price = float(i % 17 + 1), float(i % 89 + 1) + 0.25
            positions.append(
                NormalizedPosition(
                    user_email="",  # the store writes the owner's id, not this
                    provider="plaid",
                    institution=institution,
                    account_id=f"synthetic-{account}",
                    account_name=f"{institution} account {account}",
                    account_type="brokerage",
                    account_mask=f"{account:04d}",
                    ticker=f"SYN{i:05d}",
                    name=f"Synthetic security {i}",
                    security_type=SYNTHETIC_TYPES[i % len(SYNTHETIC_TYPES)],
                    quantity=quantity,
                    price=price,
                    market_value=round(quantity * price, 2),
                    cost_basis=round(quantity * price * 0.9, 2),
                    currency="CAD" if i % 10 == 9 else "USD",
                    as_of=as_of,
                )
            )
        return ProviderFetch(positions=positions, sources=len(SYNTHETIC_INSTITUTIONS))


def set_portfolio_size(services: Any, total: int) -> int:
    """Make the cached portfolio ``total`` positions: the SnapTrade rows as they are, and
    Plaid's rows replaced by synthetic ones (one transaction; Plaid's generation moves).

    ``total`` equal to what is cached changes nothing (the demo stays as fetched). Returns
    the number of positions now cached."""
    from services.positions.service import PositionService

    rows = services.positions.get_cached_positions()
    if total == len(rows):
        return total
    others = sum(1 for row in rows if row["provider"] != "plaid")
    if total <= others:
        raise ValueError(f"{total} positions: the SnapTrade rows alone are {others}")
    writer = PositionService(
        engine=services.engine,
        user_email=services.positions.user_email,
        fetchers={"plaid": SyntheticFetcher(total - others)},
        clock=services.clock,
        cache_hours=services.positions.cache_hours,
    )
    writer.refresh_provider_positions("plaid")
    cached = len(services.positions.get_cached_positions())
    assert cached == total, (cached, total)
    return cached
