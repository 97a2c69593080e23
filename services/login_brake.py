"""The brake on password guessing, counted in the database across processes and hosts.

A password is checked only after an attempt was reserved: in one transaction the
attempt is written, then the recent attempts of its client address and of the
account are counted (the new one included); over a limit, the reservation is
taken back and the caller must wait. Reserving before the slow hash is what keeps
60 parallel guesses from all getting checked. A failed check keeps its row (it
counts for the whole window); a success deletes only its own reservation, so one
right password does not wipe the brake for anybody else. No address is exempt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from core.errors import BrokerageHubError
from services.clock import Clock
from services.models import LoginAttempt
from services.single_flight import advisory_key

RESERVED = "reserved"
FAILED = "failed"
MAX_CLIENT_LENGTH = 64


class TooManyLoginAttempts(BrokerageHubError):
    kind = "too_many_login_attempts"
    http_status = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed logins: try again in {retry_after_seconds} seconds")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class BrakeLimits:
    per_client: int = 5
    per_account: int = 20
    window: timedelta = timedelta(minutes=15)


class LoginBrake:
    def __init__(self, engine: Engine, clock: Clock, limits: BrakeLimits | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.limits = limits or BrakeLimits()

    def reserve(self, client: str, account: str) -> int:
        """Reserve one password check for ``client`` on ``account``; returns its id.

        Raises :class:`TooManyLoginAttempts` (with how long to wait) when either limit
        is reached; nothing is checked then.
        """
        client = client[:MAX_CLIENT_LENGTH]
        now = self._clock()
        since = now - self.limits.window
        with self._engine.begin() as conn:
            self._serialise(conn)
            self._forget_old(conn, since)
            attempt_id = conn.execute(
                insert(LoginAttempt)
                .values(client=client, account=account, attempted_at=now, outcome=RESERVED)
                .returning(LoginAttempt.id)
            ).scalar_one()
            waits = [
                self._wait(conn, LoginAttempt.client == client, self.limits.per_client, now),
                self._wait(conn, LoginAttempt.account == account, self.limits.per_account, now),
            ]
            wait = max(waits)
            if wait > 0:
                conn.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
        if wait > 0:
            raise TooManyLoginAttempts(wait)
        return int(attempt_id)

    def failed(self, attempt_id: int) -> None:
        """The reserved check failed: it keeps counting for the whole window."""
        with self._engine.begin() as conn:
            conn.execute(
                update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(outcome=FAILED)
            )

    def succeeded(self, attempt_id: int) -> None:
        """The reserved check succeeded: only its own reservation is released."""
        with self._engine.begin() as conn:
            conn.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))

    def clear(self, client: str | None = None) -> int:
        """Release the brake (the owner, from the server's CLI): one address, or everything."""
        with self._engine.begin() as conn:
            query = delete(LoginAttempt)
            if client is not None:
                query = query.where(LoginAttempt.client == client[:MAX_CLIENT_LENGTH])
            return int(conn.execute(query).rowcount or 0)

    def forget_old(self) -> int:
        """Delete attempts that left the window (the scheduler's clean-up); returns how many."""
        with self._engine.begin() as conn:
            return self._forget_old(conn, self._clock() - self.limits.window)

    def _forget_old(self, conn: Connection, since: datetime) -> int:
        # Attempts outside the window count for nothing: the rows only grow the table.
        result = conn.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= since))
        return int(result.rowcount or 0)

    def _serialise(self, conn: Connection) -> None:
        # SQLite: the INSERT below takes the database's write lock, so reservations are
        # already one at a time. Postgres: a transaction lock makes them so, or two
        # racing transactions would each count without seeing the other's row.
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(advisory_key("login-brake"))))

    def _wait(self, conn: Connection, who: object, limit: int, now: datetime) -> int:
        """Seconds until ``who`` may try again (0: it may now, this attempt included)."""
        times = [
            moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            for (moment,) in conn.execute(
                select(LoginAttempt.attempted_at)
                .where(who, LoginAttempt.attempted_at > now - self.limits.window)  # type: ignore[arg-type]
                .order_by(LoginAttempt.attempted_at.desc(), LoginAttempt.id.desc())
            )
        ]
        if len(times) <= limit:
            return 0
        # Wait until the attempt that put it over the limit leaves the window.
        oldest_counting = times[limit]
        return max(1, math.ceil((oldest_counting + self.limits.window - now).total_seconds()))
