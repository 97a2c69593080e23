"""Fault recovery, one fault kind at a time: the cases, the services they run against, and
one explicit refresh under each (calls, wall time, answer, cached rows kept)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
    from services.storage.db import make_engine, upgrade_schema
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


def past_the_refresh_cooldown(services: Any) -> None:
    """The rows were stored at this very moment: within the cooldown an explicit refresh
    would answer from them without a call, and there would be no fault to measure."""
    services.clock.now += timedelta(seconds=services.settings.refresh_cooldown_seconds)


def run_fault_case(services: Any, emulator: Any, case: FaultCase) -> dict[str, Any]:
    """One explicit refresh under ``case``: calls, wall time, answer, rows kept."""

    controls = emulator.controls
    controls.clear()
    # Start from a healthy, freshly cached provider (this also repairs a marked connection).
    services.positions.refresh_provider_positions(case.provider)
    past_the_refresh_cooldown(services)
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
    past_the_refresh_cooldown(services)
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
