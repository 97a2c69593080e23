"""Holds: park every request of an endpoint at the emulator until a test releases it."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

from sandbox.faults.rules import ALL_ENDPOINTS

log = logging.getLogger(__name__)

# The longest a held request waits for its release before it is answered anyway:
# a hold nobody releases must not keep a server thread forever. Stopping the
# emulator, ``release`` and ``clear`` free held requests at once.
HOLD_LIMIT_SECONDS = 60.0


@dataclass
class _Gate:
    """One engaged hold: requests wait on ``opened``; ``parked`` counts them per endpoint."""

    opened: threading.Event = field(default_factory=threading.Event)
    parked: Counter[str] = field(default_factory=Counter)


class Hold:
    """The handle :meth:`Controls.hold` returns; leaving a ``with`` block releases it."""

    def __init__(self, holds: Holds, endpoint: str) -> None:
        self._holds = holds
        self.endpoint = endpoint

    @property
    def held(self) -> int:
        """Requests parked by this switch right now."""
        return self._holds.held(self.endpoint)

    def wait_until_held(self, count: int = 1, timeout: float = 10.0) -> int:
        """Block until ``count`` requests are parked; see :meth:`Controls.wait_until_held`."""
        return self._holds.wait_until_held(self.endpoint, count, timeout)

    def release(self) -> int:
        """Let the parked requests (and later ones) through; returns how many were parked."""
        return self._holds.release(self.endpoint)

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Hold({self.endpoint!r}, held={self.held})"


class Holds:
    """The engaged holds of one emulator (endpoint keys checked by the caller)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_changed = threading.Condition(self._lock)
        self._gates: dict[str, _Gate] = {}
        self._closed = False  # set when the server stops: nothing is held any more

    def hold(self, endpoint: str) -> Hold:
        """Engage a hold on ``endpoint``; holding a held endpoint keeps the same switch."""
        with self._lock:
            self._gates.setdefault(endpoint, _Gate())
        return Hold(self, endpoint)

    def release(self, endpoint: str | None = None) -> int:
        """Lift the hold on ``endpoint`` (None: every hold); returns the requests it let go."""
        with self._lock:
            keys = list(self._gates) if endpoint is None else [endpoint]
            gates = [gate for gate in (self._gates.pop(key, None) for key in keys) if gate]
            released = sum(sum(gate.parked.values()) for gate in gates)
        for gate in gates:
            gate.opened.set()
        return released

    def held(self, endpoint: str | None = None) -> int:
        with self._lock:
            return self._held_locked(endpoint)

    def wait_until_held(self, endpoint: str, count: int, timeout: float) -> int:
        if count < 1:
            raise ValueError("count must be a positive number of requests")
        with self._held_changed:
            reached = self._held_changed.wait_for(
                lambda: self._held_locked(endpoint) >= count, timeout
            )
            held = self._held_locked(endpoint)
        if not reached:
            raise TimeoutError(
                f"{held} of {count} request(s) held at {endpoint!r} after {timeout} s"
            )
        return held

    def park_if_held(self, endpoint: str) -> None:
        """Wait here while ``endpoint`` (or "*") is held, at most ``HOLD_LIMIT_SECONDS``."""
        with self._lock:
            if self._closed:
                return
            gate = self._gates.get(endpoint) or self._gates.get(ALL_ENDPOINTS)
            if gate is None:
                return
            gate.parked[endpoint] += 1
            self._held_changed.notify_all()
        try:
            if not gate.opened.wait(HOLD_LIMIT_SECONDS):
                log.warning(
                    "a request to %s was held %s s without release", endpoint, HOLD_LIMIT_SECONDS
                )
        finally:
            with self._lock:
                gate.parked[endpoint] -= 1
                self._held_changed.notify_all()

    def close(self) -> None:
        """Release every held request and hold nothing from now on."""
        with self._lock:
            self._closed = True
        self.release()

    def _held_locked(self, endpoint: str | None) -> int:
        everywhere = endpoint in (None, ALL_ENDPOINTS)
        return sum(
            count
            for gate in self._gates.values()
            for key, count in gate.parked.items()
            if everywhere or key == endpoint
        )
