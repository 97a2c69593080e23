"""The load run's figures: its configuration, each request's sample, the result and its
checks (one fetch per source for the whole run, no error, no degraded answer), and the
Markdown table ``make bench`` prints."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


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


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


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
