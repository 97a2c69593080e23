"""The fault and latency switches: which endpoint answers with which fault, how
many more times, for which subject, and how long each answer is delayed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sandbox.plaid.common import PLAID_FAULTS
from sandbox.snaptrade.common import SNAPTRADE_FAULTS

ALL_ENDPOINTS = "*"

# Faults every endpoint of both providers can produce:
#   "503"           the provider's own 503 error body
#   "malformed"     200 with a body that is not JSON (a truncated answer)
#   "missing_field" 200 with valid JSON lacking a field the response schema requires
#   "drop"          the connection is closed without any response, like a dead server
#   "nested"        200 with the answer plus a value nested NESTED_DEPTH arrays deep
#   "huge"          200 with the answer plus a string making it HUGE_ANSWER_BYTES long
GENERIC_FAULTS = frozenset({"503", "malformed", "missing_field", "drop", "nested", "huge"})
NESTED_DEPTH = 100_000  # far deeper than any JSON parser's stack
HUGE_ANSWER_BYTES = 24 * 1024 * 1024  # far larger than any real answer
FAULTS_BY_PROVIDER = {
    "plaid": frozenset(PLAID_FAULTS) | GENERIC_FAULTS,
    "snaptrade": frozenset(SNAPTRADE_FAULTS) | GENERIC_FAULTS,
}


@dataclass
class FaultRule:
    fault: str
    remaining: int | None  # None: until cleared
    retry_after: float | None = None


class FaultSwitches:
    """The fault rules and latencies of one emulator (endpoint keys checked by the caller)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, float] = {}
        self._rules: dict[tuple[str, str | None], FaultRule] = {}

    def set_latency(self, endpoint: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0 seconds")
        with self._lock:
            if seconds:
                self._latency[endpoint] = float(seconds)
            else:
                self._latency.pop(endpoint, None)

    def latency_for(self, endpoint: str) -> float:
        with self._lock:
            return self._latency.get(endpoint, self._latency.get(ALL_ENDPOINTS, 0.0))

    def fail(
        self,
        endpoint: str,
        fault: str,
        times: int | None,
        retry_after: float | None,
        subject: str | None,
    ) -> None:
        providers = (
            list(FAULTS_BY_PROVIDER) if endpoint == ALL_ENDPOINTS else [endpoint.split(" ", 1)[0]]
        )
        for provider in providers:
            if fault not in FAULTS_BY_PROVIDER[provider]:
                raise ValueError(f"{provider} has no fault {fault!r}")
        if times is not None and times < 1:
            raise ValueError("times must be a positive number of calls, or None")
        with self._lock:
            self._rules[(endpoint, subject)] = FaultRule(fault, times, retry_after)

    def take(self, endpoint: str, subject: str | None) -> FaultRule | None:
        """The fault this call must answer with, if any (uses up one of its ``times``)."""
        # The most specific switch wins: this endpoint before "*", this subject before any.
        keys = [
            (endpoint, subject),
            (endpoint, None),
            (ALL_ENDPOINTS, subject),
            (ALL_ENDPOINTS, None),
        ]
        with self._lock:
            for key in keys:
                rule = self._rules.get(key)
                if rule is None:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._rules[key]
                return FaultRule(rule.fault, None, rule.retry_after)
        return None

    def clear(self) -> None:
        """Remove every fault and latency."""
        with self._lock:
            self._rules.clear()
            self._latency.clear()
