"""Plaid's webhook verification keys, kept in the database for every worker and host.

A webhook names the key that signed it by ``kid``. A known key is read from the
``plaid_webhook_keys`` table (with Plaid's ``expired_at``, re-checked once a day and
whenever a new key appears, as Plaid's own sample does). An unknown ``kid`` is looked up
with ``/webhook_verification_key/get`` only when nothing a forger controls can stop
short of it: the caller has already checked the JWT's age and body hash, and this store
asks that the event names an Item or a link this hub knows (``knows_subject``), which
an outsider cannot guess. Then:

- at most one lookup per ``kid`` per ``RETRY_FAILED_AFTER`` across all processes: the
  first process claims the row (``pending``), the others wait for its result;
- at most ``LOOKUPS_PER_MINUTE`` lookups a minute across all processes, counted from the
  same rows;
- a lookup that finds no key is counted on its row (``failed_lookups``), not in the call
  ledger, and the row goes after ``KEEP_FAILED_FOR`` (housekeeping).

So a flood of junk ``kid``s costs no lookups at all, and cannot use up the budget that a
genuine key rotation needs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import WebhookRejected
from services.clock import Clock, as_utc
from services.models import PlaidWebhookKey
from services.single_flight import advisory_key

log = logging.getLogger(__name__)

FOUND, FAILED, PENDING = "found", "failed", "pending"
LOOKUPS_PER_MINUTE = 10
RETRY_FAILED_AFTER = timedelta(minutes=10)
RECHECK_FOUND_AFTER = timedelta(days=1)
# A claim older than this was left by a process that stopped mid-lookup: another may retake it.
PENDING_LEASE = timedelta(seconds=30)
KEEP_FAILED_FOR = timedelta(days=30)
KEEP_EXPIRED_FOR = timedelta(days=30)
WAIT_POLLS = 30
WAIT_SECONDS = 0.1


class _OverBudget(Exception):
    """The minute's lookups are spent: the claim just made is rolled back."""


class PlaidKeyStore:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        fetch: Callable[[str], dict[str, Any]],
        knows_subject: Callable[[dict[str, Any]], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._fetch = fetch
        self._knows_subject = knows_subject
        self._sleep = sleep

    def key_for(self, kid: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The JWK of ``kid``; WebhookRejected when it is unknown and may not, or could not,
        be looked up, or when Plaid says it has expired."""
        row = self._row(kid)
        if row is not None and row.outcome == FOUND and row.jwk:
            return self._known(row)
        if not self._knows_subject(payload):
            raise WebhookRejected(
                "the Plaid-Verification JWT names a key this hub has not seen, for an event "
                "about no Item or link of this hub"
            )
        for _ in range(WAIT_POLLS):
            claim = self._claim(kid)
            if claim == "mine":
                return self._look_up(kid)
            if claim != "wait":
                raise WebhookRejected(claim)
            # Another process is asking Plaid for this kid now: use its answer.
            self._sleep(WAIT_SECONDS)
            row = self._row(kid)
            if row is not None and row.outcome == FOUND and row.jwk:
                return self._known(row)
        raise WebhookRejected("the Plaid verification key is being fetched; deliver again")

    # --- reading ----------------------------------------------------------------------

    def _row(self, kid: str) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(
                select(PlaidWebhookKey).where(PlaidWebhookKey.kid == kid)
            ).one_or_none()

    def _known(self, row: Any) -> dict[str, Any]:
        now = self._clock()
        if row.expired_at is not None and as_utc(row.expired_at) <= now:
            raise WebhookRejected("the Plaid-Verification key has expired")
        jwk = dict(json.loads(row.jwk))
        if now - as_utc(row.looked_up_at) >= RECHECK_FOUND_AFTER and self._reclaim_found(row.kid):
            jwk = self._recheck(row.kid, jwk)
        if jwk.get("expired_at"):
            raise WebhookRejected("the Plaid-Verification key has expired")
        return jwk

    # --- claiming a lookup ------------------------------------------------------------

    def _claim(self, kid: str) -> str:
        """``mine`` (this process looks it up), ``wait`` (another does), or why not.

        Each transaction writes before it reads: the claim is made first and counted
        against the minute's budget after (taken back when over it). On SQLite, a
        transaction that read first could not write once another process had written."""
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Claims one at a time, so two never both count the minute's budget
                    # without each other (SQLite's write lock does this already).
                    conn.execute(select(func.pg_advisory_xact_lock(advisory_key("plaid-keys"))))
                if self._insert_pending(conn, kid, now) or self._retake(conn, kid, now):
                    if self._lookups_last_minute(conn, now) > LOOKUPS_PER_MINUTE:
                        raise _OverBudget
                    return "mine"
                row = conn.execute(
                    select(PlaidWebhookKey.outcome, PlaidWebhookKey.looked_up_at).where(
                        PlaidWebhookKey.kid == kid
                    )
                ).one_or_none()
        except _OverBudget:  # the transaction, and so the claim, was rolled back
            return "too many Plaid key lookups this minute; deliver again later"
        if row is not None and row.outcome == FAILED:
            return "Plaid knew no verification key of this kid a moment ago"
        return "wait"  # found, being looked up by another process, or deleted meanwhile

    def _insert_pending(self, conn: Connection, kid: str, now: datetime) -> bool:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(PlaidWebhookKey).values(
                        kid=kid, outcome=PENDING, looked_up_at=now, failed_lookups=0
                    )
                )
        except IntegrityError:
            return False
        return True

    def _retake(self, conn: Connection, kid: str, now: datetime) -> bool:
        """Claim a kid whose last lookup failed long enough ago, or whose claimant stopped."""
        retaken = conn.execute(
            update(PlaidWebhookKey)
            .where(
                PlaidWebhookKey.kid == kid,
                or_(
                    (PlaidWebhookKey.outcome == FAILED)
                    & (PlaidWebhookKey.looked_up_at <= now - RETRY_FAILED_AFTER),
                    (PlaidWebhookKey.outcome == PENDING)
                    & (PlaidWebhookKey.looked_up_at <= now - PENDING_LEASE),
                ),
            )
            .values(outcome=PENDING, looked_up_at=now)
        ).rowcount
        return retaken == 1

    def _reclaim_found(self, kid: str) -> bool:
        """Whether this process re-checks a found key (one process a day does)."""
        now = self._clock()
        with self._engine.begin() as conn:
            return (
                conn.execute(
                    update(PlaidWebhookKey)
                    .where(
                        PlaidWebhookKey.kid == kid,
                        PlaidWebhookKey.outcome == FOUND,
                        PlaidWebhookKey.looked_up_at <= now - RECHECK_FOUND_AFTER,
                    )
                    .values(looked_up_at=now)
                ).rowcount
                == 1
            )

    def _lookups_last_minute(self, conn: Connection, now: datetime) -> int:
        return int(
            conn.execute(
                select(func.count())
                .select_from(PlaidWebhookKey)
                .where(PlaidWebhookKey.looked_up_at > now - timedelta(minutes=1))
            ).scalar_one()
        )

    # --- asking Plaid -----------------------------------------------------------------

    def _look_up(self, kid: str) -> dict[str, Any]:
        try:
            jwk = self._fetch(kid)
        except Exception as exc:  # an unknown kid, or Plaid unreachable: not verified
            # Only this claim is settled: a key another process found meanwhile (it retook
            # a claim whose lease passed) stays found.
            mine = (PlaidWebhookKey.kid == kid) & (PlaidWebhookKey.outcome == PENDING)
            with self._engine.begin() as conn:
                if getattr(exc, "retryable", False):
                    # Plaid could not answer now (a timeout, a 5xx, a 429): the kid may be
                    # genuine, so the claim is let go and Plaid's next delivery asks again.
                    conn.execute(delete(PlaidWebhookKey).where(mine))
                else:
                    conn.execute(
                        update(PlaidWebhookKey)
                        .where(mine)
                        .values(outcome=FAILED, failed_lookups=PlaidWebhookKey.failed_lookups + 1)
                    )
            log.info("Plaid verification key lookup failed (%s)", type(exc).__name__)
            raise WebhookRejected("the Plaid verification key could not be fetched") from exc
        self._store_found(kid, jwk)
        self._recheck_others(kid)
        if jwk.get("expired_at"):
            raise WebhookRejected("the Plaid-Verification key has expired")
        return jwk

    def _recheck(self, kid: str, known: dict[str, Any]) -> dict[str, Any]:
        """Plaid's current word on a kept key; the kept one if Plaid cannot say now."""
        try:
            jwk = self._fetch(kid)
        except Exception:  # keep verifying with what we have: the key itself cannot change
            log.info("could not re-check a Plaid verification key; keeping it")
            return known
        self._store_found(kid, jwk)
        return jwk

    def _recheck_others(self, new_kid: str) -> None:
        """A new key usually means Plaid rotated: learn which kept keys have expired."""
        with self._engine.connect() as conn:
            others = conn.execute(
                select(PlaidWebhookKey.kid).where(
                    PlaidWebhookKey.kid != new_kid,
                    PlaidWebhookKey.outcome == FOUND,
                    PlaidWebhookKey.expired_at.is_(None),
                )
            ).scalars()
            kids = list(others)
        for kid in kids:
            row = self._row(kid)
            if row is not None and row.jwk:
                self._recheck(kid, dict(json.loads(row.jwk)))

    def _store_found(self, kid: str, jwk: dict[str, Any]) -> None:
        expired = jwk.get("expired_at")
        expired_at = (
            datetime.fromtimestamp(float(expired), UTC)
            if isinstance(expired, int | float) and not isinstance(expired, bool)
            else (self._clock() if expired else None)
        )
        with self._engine.begin() as conn:
            conn.execute(
                update(PlaidWebhookKey)
                .where(PlaidWebhookKey.kid == kid)
                .values(
                    outcome=FOUND,
                    jwk=json.dumps(jwk),
                    expired_at=expired_at,
                    looked_up_at=self._clock(),
                )
            )

    # --- housekeeping -----------------------------------------------------------------

    def forget_old(self, conn: Connection, now: datetime) -> int:
        """Failed lookups and long-expired keys past keeping; returns how many went."""
        result = conn.execute(
            delete(PlaidWebhookKey).where(
                or_(
                    (PlaidWebhookKey.outcome != FOUND)
                    & (PlaidWebhookKey.looked_up_at <= now - KEEP_FAILED_FOR),
                    PlaidWebhookKey.expired_at <= now - KEEP_EXPIRED_FOR,
                )
            )
        )
        return int(result.rowcount or 0)

    def failed_lookups(self) -> int:
        """Lookups that found no key, among the rows kept (the last 30 days)."""
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(PlaidWebhookKey.failed_lookups), 0))
                ).scalar_one()
            )
