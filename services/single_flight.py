"""One refresh at a time per (user, what is refreshed), across threads, processes and hosts.

Concurrent callers that find the same thing stale must cause one provider fetch:
a thread lock serialises the callers of this process, and on Postgres a
transaction-scoped advisory lock serialises every process on every host. The lock
dies with its transaction, so a killed process never leaves it held.

A lock can also be held in parts (:meth:`SingleFlight.hold_parts`): refreshes of different
parts of one thing (one Plaid Item, one SnapTrade account) run side by side, while a
refresh of the whole (:meth:`SingleFlight.hold`) waits for them and they for it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import ClassVar

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from core.errors import Conflict


class _SharedOrExclusive:
    """A thread lock that many may hold shared, or one exclusively."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sharers = 0
        self._exclusive = False

    def acquire(self, *, shared: bool, timeout: float) -> bool:
        with self._changed:
            if shared:
                if not self._changed.wait_for(lambda: not self._exclusive, timeout):
                    return False
                self._sharers += 1
            else:
                free = self._changed.wait_for(
                    lambda: not self._exclusive and self._sharers == 0, timeout
                )
                if not free:
                    return False
                self._exclusive = True
            return True

    def release(self, *, shared: bool) -> None:
        with self._changed:
            if shared:
                self._sharers -= 1
            else:
                self._exclusive = False
            self._changed.notify_all()


class SingleFlight:
    # Shared by every instance in the process: one lock per key.
    _thread_locks: ClassVar[dict[str, _SharedOrExclusive]] = {}
    _thread_locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, engine: Engine, *, wait_seconds: float) -> None:
        self._engine = engine
        self.wait_seconds = wait_seconds

    @contextmanager
    def hold(self, key: str, what: str) -> Iterator[None]:
        """Hold the lock named ``key``; ``what`` names it in the Conflict raised after waiting."""
        with self._held([(key, False)], what):
            yield

    @contextmanager
    def hold_parts(self, key: str, parts: Iterable[str], what: str) -> Iterator[None]:
        """Hold ``key`` shared and each of its ``parts`` exclusively."""
        wanted = [(key, True)] + [(f"{key}:{part}", False) for part in sorted(set(parts))]
        with self._held(wanted, what):
            yield

    @contextmanager
    def _held(self, locks: list[tuple[str, bool]], what: str) -> Iterator[None]:
        # Always in the same order (the whole first, then the parts sorted): no deadlock.
        deadline = time.monotonic() + self.wait_seconds
        with ExitStack() as stack:
            for key, shared in locks:
                lock = self._thread_lock(key)
                if not lock.acquire(shared=shared, timeout=max(0.0, deadline - time.monotonic())):
                    raise Conflict(f"a refresh of {what} is still running; try again shortly")
                stack.callback(lock.release, shared=shared)
            if self._engine.dialect.name != "postgresql":
                yield
                return
            with self._engine.connect() as conn, conn.begin():
                conn.execute(text(f"SET LOCAL lock_timeout = '{int(self.wait_seconds)}s'"))
                for key, shared in locks:
                    _advisory_lock(conn, key, shared=shared, what=what)
                # The locks are held until this transaction ends (or its process dies).
                yield

    def _thread_lock(self, key: str) -> _SharedOrExclusive:
        with self._thread_locks_guard:
            return self._thread_locks.setdefault(key, _SharedOrExclusive())


def _advisory_lock(conn: Connection, key: str, *, shared: bool, what: str) -> None:
    lock = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
    try:
        conn.execute(select(lock(advisory_key(key))))
    except DBAPIError as exc:
        raise Conflict(f"a refresh of {what} is still running in another process") from exc


def advisory_key(key: str) -> int:
    """A Postgres advisory lock id (a signed 64-bit number) for a lock name."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
