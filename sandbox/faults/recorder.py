"""What the emulator saw: call counters per endpoint and subject, and the recent
requests with their credentials masked.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

# How many requests the recorder keeps (oldest first out): a long-running emulator
# (``make run``) must not grow without bound.
RECORDED_REQUESTS = 2000
# Credentials are recorded masked: a test can check that they were sent and are
# strings, but the recorder never holds a user secret, access token or API secret.
MASK = "[masked]"
_MASKED_QUERY_KEYS = frozenset({"usersecret"})
_MASKED_BODY_KEYS = frozenset({"secret", "access_token", "public_token", "usersecret"})


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the emulator received it, with its credentials masked."""

    endpoint: str  # endpoint key, e.g. "snaptrade /trade/impact"
    method: str
    path_params: dict[str, str]
    query: dict[str, list[str]]  # every value of every key, in order
    body: Any  # decoded JSON (None without a body); the raw text when it is not JSON
    body_is_json: bool
    latency: float = 0.0  # seconds the emulator delayed its answer (the latency switch)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: MASK if str(key).lower() in _MASKED_BODY_KEYS else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


class Recorder:
    """Call counts and the last ``RECORDED_REQUESTS`` requests of one emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str | None]] = Counter()
        self._requests: deque[RecordedRequest] = deque(maxlen=RECORDED_REQUESTS)

    def record_call(self, endpoint: str, subject: str | None) -> None:
        with self._lock:
            self._counts[(endpoint, subject)] += 1

    def calls(self, endpoint: str | None = None, subject: str | None = None) -> int:
        with self._lock:
            return sum(
                count
                for (called, about), count in self._counts.items()
                if endpoint in (None, called) and subject in (None, about)
            )

    def calls_by_subject(self, endpoint: str) -> dict[str | None, int]:
        with self._lock:
            return {
                about: count
                for (called, about), count in self._counts.items()
                if called == endpoint and count
            }

    def record_request(
        self,
        endpoint: str,
        method: str,
        *,
        path_params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        body_is_json: bool,
        latency: float = 0.0,
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
            latency=latency,
        )
        with self._lock:
            self._requests.append(recorded)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if endpoint in (None, r.endpoint)]

    def reset(self) -> None:
        """Forget the call counts and the recorded requests (together)."""
        with self._lock:
            self._counts.clear()
            self._requests.clear()
