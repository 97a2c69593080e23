"""The brake on password guessing, counted in the database across processes and hosts.

A password is checked only after an attempt was reserved: in one transaction the
attempt is written, then the recent attempts of its budget are counted (the new one
included); over a limit, the reservation is taken back and the caller must wait.
Reserving before the slow hash is what keeps 60 parallel guesses from all getting
checked. A failed check keeps its row (it counts for the whole window); a success
deletes only its own reservation, so one right password does not wipe the brake for
anybody else. No address is exempt.

Whose budget an attempt spends (OWASP's "Slow Down Online Guessing Attacks with
Device Cookies"):

* an unknown device: its client address (``per_client``) and, together with every
  other unknown device, the account (``per_account``);
* a browser that logged in before (a valid device cookie, ``services.web_access.devices``):
  that device alone (``per_device``), so guesses from elsewhere, however many, never
  lock its owner out, and a device that guesses locks out only itself;
* ``confirm-trade`` at the server's terminal: that terminal user alone (``per_terminal``).

The kind is in the ``client`` column: ``device:<id>``, ``cli:<user>`` or the address.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, insert, select, update

from core.errors import BrokerageHubError
from services.clock import Clock
from services.models import LoginAttempt
from services.single_flight import advisory_key

RESERVED = "reserved"
FAILED = "failed"
MAX_CLIENT_LENGTH = 64
DEVICE_PREFIX = "device:"
TERMINAL_PREFIX = "cli:"
_BUDGET_PREFIXES = (DEVICE_PREFIX, TERMINAL_PREFIX)


class TooManyLoginAttempts(BrokerageHubError):
    kind = "too_many_login_attempts"
    http_status = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed logins: try again in {retry_after_seconds} seconds")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class BrakeLimits:
    per_client: int = 5  # one address of unknown devices
    per_account: int = 20  # every unknown device together
    per_device: int = 5  # one browser that logged in before
    per_terminal: int = 5  # confirm-trade at the server's terminal, per terminal user
    window: timedelta = timedelta(minutes=15)


class LoginBrake:
    def __init__(self, engine: Engine, clock: Clock, limits: BrakeLimits | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.limits = limits or BrakeLimits()

    def reserve(self, client: str, account: str) -> int:
        """Reserve one password check on ``account`` from an unknown device at address
        ``client``; returns its id.

        Raises :class:`TooManyLoginAttempts` (with how long to wait) when the address's
        or the account's limit for unknown devices is reached; nothing is checked then.
        """
        client = client[:MAX_CLIENT_LENGTH]
        if client.lower().startswith(_BUDGET_PREFIXES):
            # An address never looks like this; if a proxy says otherwise, it stays an address.
            client = ("?" + client)[:MAX_CLIENT_LENGTH]
        unknown_devices = and_(
            LoginAttempt.account == account,
            *(LoginAttempt.client.not_like(prefix + "%") for prefix in _BUDGET_PREFIXES),
        )
        return self._reserve(
            client,
            account,
            [
                (LoginAttempt.client == client, self.limits.per_client),
                (unknown_devices, self.limits.per_account),
            ],
        )

    def reserve_device(self, device: str, account: str) -> int:
        """Reserve one check from a browser that logged in before: only its own budget
        counts (no address or account limit holds it back)."""
        key = (DEVICE_PREFIX + device)[:MAX_CLIENT_LENGTH]
        return self._reserve(key, account, [(LoginAttempt.client == key, self.limits.per_device)])

    def reserve_terminal(self, terminal: str, account: str) -> int:
        """Reserve one check typed at the server's terminal (``confirm-trade``): counted
        apart from the web, so a flood of web guesses cannot stop an order's confirmation."""
        key = (TERMINAL_PREFIX + terminal)[:MAX_CLIENT_LENGTH]
        return self._reserve(key, account, [(LoginAttempt.client == key, self.limits.per_terminal)])

    def _reserve(
        self, client: str, account: str, budgets: list[tuple[ColumnElement[bool], int]]
    ) -> int:
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
            wait = max(self._wait(conn, who, limit, now) for who, limit in budgets)
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
        """Release the brake (the owner, from the server's CLI): one client (an address,
        ``device:<id>`` or ``cli:<user>``), or everything."""
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

    def _wait(self, conn: Connection, who: ColumnElement[bool], limit: int, now: datetime) -> int:
        """Seconds until ``who`` may try again (0: it may now, this attempt included)."""
        times = [
            moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            for (moment,) in conn.execute(
                select(LoginAttempt.attempted_at)
                .where(who, LoginAttempt.attempted_at > now - self.limits.window)
                .order_by(LoginAttempt.attempted_at.desc(), LoginAttempt.id.desc())
            )
        ]
        if len(times) <= limit:
            return 0
        # Wait until the attempt that put it over the limit leaves the window.
        oldest_counting = times[limit]
        return max(1, math.ceil((oldest_counting + self.limits.window - now).total_seconds()))
