"""One refresh at a time per (user, what is refreshed), across threads, processes and hosts.

Concurrent callers that find the same thing stale must cause one provider fetch:
a thread lock serialises the callers of this process, and on Postgres a
transaction-scoped advisory lock serialises every process on every host. The lock
dies with its transaction, so a killed process never leaves it held.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from core.errors import Conflict


class SingleFlight:
    # Shared by every instance in the process: one lock per key.
    _thread_locks: ClassVar[dict[str, threading.Lock]] = {}
    _thread_locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, engine: Engine, *, wait_seconds: float) -> None:
        self._engine = engine
        self.wait_seconds = wait_seconds

    @contextmanager
    def hold(self, key: str, what: str) -> Iterator[None]:
        """Hold the lock named ``key``; ``what`` names it in the Conflict raised after waiting."""
        with self._thread_locks_guard:
            lock = self._thread_locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=self.wait_seconds):
            raise Conflict(f"a refresh of {what} is still running; try again shortly")
        try:
            if self._engine.dialect.name != "postgresql":
                yield
                return
            with self._engine.connect() as conn, conn.begin():
                conn.execute(text(f"SET LOCAL lock_timeout = '{int(self.wait_seconds)}s'"))
                try:
                    conn.execute(select(func.pg_advisory_xact_lock(advisory_key(key))))
                except DBAPIError as exc:
                    raise Conflict(
                        f"a refresh of {what} is still running in another process"
                    ) from exc
                # The lock is held until this transaction ends (or its process dies).
                yield
        finally:
            lock.release()


def advisory_key(key: str) -> int:
    """A Postgres advisory lock id (a signed 64-bit number) for a lock name."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
