"""Switches that make the emulator misbehave on purpose, and its call counters.

Endpoint keys are ``"<provider> <path template>"``, for example
``"plaid /investments/holdings/get"`` or
``"snaptrade /accounts/{accountId}/positions/all"``; ``"*"`` means every endpoint.

Faults, latency and counters belong to one emulator instance (memory only).
Connection switches (disabled, trading permission) change the shared state, so
every emulator process sharing the state file sees them.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.plaid_api import PLAID_FAULTS, PlaidApi
from sandbox.snaptrade_api import SNAPTRADE_FAULTS, SnapTradeApi
from sandbox.state import StateStore

ALL_ENDPOINTS = "*"
# How many requests the recorder keeps (oldest first out): a long-running emulator
# (``make run``) must not grow without bound.
RECORDED_REQUESTS = 2000
# Credentials are recorded masked: a test can check that they were sent and are
# strings, but the recorder never holds a user secret, access token or API secret.
MASK = "[masked]"
_MASKED_QUERY_KEYS = frozenset({"usersecret"})
_MASKED_BODY_KEYS = frozenset({"secret", "access_token", "public_token", "usersecret"})

# Faults every endpoint of both providers can produce:
#   "503"           the provider's own 503 error body
#   "malformed"     200 with a body that is not JSON (a truncated answer)
#   "missing_field" 200 with valid JSON lacking a field the response schema requires
#   "drop"          the connection is closed without any response, like a dead server
GENERIC_FAULTS = frozenset({"503", "malformed", "missing_field", "drop"})
FAULTS_BY_PROVIDER = {
    "plaid": frozenset(PLAID_FAULTS) | GENERIC_FAULTS,
    "snaptrade": frozenset(SNAPTRADE_FAULTS) | GENERIC_FAULTS,
}


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the emulator received it, with its credentials masked."""

    endpoint: str  # endpoint key, e.g. "snaptrade /trade/impact"
    method: str
    path_params: dict[str, str]
    query: dict[str, list[str]]  # every value of every key, in order
    body: Any  # decoded JSON (None without a body); the raw text when it is not JSON
    body_is_json: bool


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: MASK if str(key).lower() in _MASKED_BODY_KEYS else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


@dataclass
class FaultRule:
    fault: str
    remaining: int | None  # None: until cleared
    retry_after: float | None = None


class Controls:
    """Python handle on one emulator's faults, latency, counters and connection switches."""

    def __init__(
        self,
        plaid: PlaidApi,
        snaptrade: SnapTradeApi,
        store: StateStore,
        clock: Callable[[], float],
    ) -> None:
        self._plaid = plaid
        self._snaptrade = snaptrade
        self._store = store
        self._clock = clock
        self._endpoints = frozenset(
            f"{api.provider} {route.template}" for api in (plaid, snaptrade) for route in api.routes
        )
        self._lock = threading.Lock()
        self._latency: dict[str, float] = {}
        self._rules: dict[tuple[str, str | None], FaultRule] = {}
        self._counts: Counter[tuple[str, str | None]] = Counter()
        self._requests: deque[RecordedRequest] = deque(maxlen=RECORDED_REQUESTS)

    @property
    def endpoints(self) -> frozenset[str]:
        """Every endpoint key this emulator serves."""
        return self._endpoints

    # --- latency ------------------------------------------------------------------

    def set_latency(self, endpoint: str, seconds: float) -> None:
        """Delay every answer of ``endpoint`` ("*" = all) by ``seconds`` (0 removes it)."""
        self._check_endpoint(endpoint)
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

    # --- faults ---------------------------------------------------------------------

    def fail(
        self,
        endpoint: str,
        fault: str,
        times: int | None = None,
        retry_after: float | None = None,
        *,
        subject: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls (None = all until cleared) with ``fault``.

        ``subject`` narrows the fault to calls about one access token (Plaid) or
        one account / authorization id (SnapTrade). ``retry_after`` sets the
        Retry-After header of a SnapTrade "429" (default 1 second).
        """
        self._check_endpoint(endpoint)
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

    def take_fault(self, endpoint: str, subject: str | None) -> FaultRule | None:
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
        """Remove every fault and latency (call counts are kept)."""
        with self._lock:
            self._rules.clear()
            self._latency.clear()

    # --- counters -------------------------------------------------------------------

    def record_call(self, endpoint: str, subject: str | None) -> None:
        with self._lock:
            self._counts[(endpoint, subject)] += 1

    def calls(self, endpoint: str | None = None, subject: str | None = None) -> int:
        """Calls received (faulted ones included); None matches any endpoint / subject."""
        with self._lock:
            return sum(
                count
                for (called, about), count in self._counts.items()
                if endpoint in (None, called) and subject in (None, about)
            )

    def calls_by_subject(self, endpoint: str) -> dict[str | None, int]:
        """Calls of one endpoint per subject (access token, account or authorization id)."""
        with self._lock:
            return {
                about: count
                for (called, about), count in self._counts.items()
                if called == endpoint and count
            }

    def reset_counts(self) -> None:
        """Forget the call counts and the recorded requests."""
        with self._lock:
            self._counts.clear()
            self._requests.clear()

    # --- the request recorder -------------------------------------------------------

    def record_request(
        self,
        endpoint: str,
        method: str,
        *,
        path_params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        body_is_json: bool,
    ) -> None:
        recorded = RecordedRequest(
            endpoint=endpoint,
            method=method,
            path_params=dict(path_params),
            query={
                key: [MASK] * len(values) if key.lower() in _MASKED_QUERY_KEYS else list(values)
                for key, values in query.items()
            },
            body=_masked(body) if body_is_json else body,
            body_is_json=body_is_json,
        )
        with self._lock:
            self._requests.append(recorded)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        """The API requests received (the last RECORDED_REQUESTS), oldest first."""
        with self._lock:
            return [r for r in self._requests if endpoint in (None, r.endpoint)]

    # --- shared-state switches ------------------------------------------------------

    def disable_connection(self, authorization_id: str, disabled: bool = True) -> None:
        """Mark a SnapTrade connection disabled (its account reads answer 402 code 3003)."""
        self._snaptrade.set_connection_disabled(authorization_id, disabled, self._clock())

    def set_trading_permission(self, authorization_id: str, allowed: bool) -> None:
        """Whether trading through this connection is allowed (else 403 code 1020)."""
        self._snaptrade.set_trading_permission(authorization_id, allowed)

    def complete_link(self, link_token: str, institution_slug: str) -> str | None:
        """Act as the person finishing Plaid Hosted Link; returns the public token."""
        return self._plaid.complete_link(link_token, institution_slug, self._clock())

    def complete_connection(self, session_id: str, brokerage_slug: str) -> str:
        """Act as the person finishing the SnapTrade portal; returns the authorization id."""
        return self._snaptrade.complete_connection(session_id, brokerage_slug, self._clock())

    def reset_state(self) -> None:
        """Back to the seeded demo data (for every process sharing the state file)."""
        self._store.reset()

    def _check_endpoint(self, endpoint: str) -> None:
        if endpoint != ALL_ENDPOINTS and endpoint not in self._endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(self._endpoints)}")
