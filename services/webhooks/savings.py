"""Refreshes webhooks made unnecessary: the cost report's "calls avoided".

Without webhooks, a provider's rows are refreshed by the first read after they outlive the
provider's cache lifetime (``*_CACHE_HOURS``). A provider whose sources are fed by webhooks
waits instead for the next webhook or the safety lifetime. Each time a read finds rows the
lifetime rule would have refreshed (one lifetime after the last refresh, real or avoided),
one avoided refresh is recorded, worth one holdings call per Item or account.

A warm read pays nothing for this: the rule is checked against the cache state the read
already has, and the last avoided refresh is kept in memory as a derived copy (the
database's UNIQUE ``after`` keeps the count exact across workers).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.clock import Clock, as_utc
from services.models import AvoidedRefresh

REPORT_DAYS = 30


class RefreshSavings:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        # (user id, provider) -> (the rows' fetch time, the last refresh it was followed by)
        self._last: dict[tuple[int, str], tuple[datetime, datetime]] = {}
        self._lock = threading.Lock()

    def note_read(
        self,
        user_id: int,
        provider: str,
        *,
        fetched_at: datetime | None,
        ttl_hours: int,
        sources: int,
    ) -> None:
        """A read served ``provider``'s rows (fetched at ``fetched_at``) because webhooks
        keep them fresh; ``sources`` Items or accounts feed them."""
        if fetched_at is None or sources < 1:
            return
        now = self._clock()
        lifetime = timedelta(hours=ttl_hours)
        if now < fetched_at + lifetime:
            return  # the lifetime rule would have served these rows too
        key = (user_id, provider)
        with self._lock:
            known = self._last.get(key)
        if known is not None and known[0] == fetched_at and now < known[1] + lifetime:
            return
        with self._engine.begin() as conn:
            latest = conn.execute(
                select(func.max(AvoidedRefresh.at)).where(
                    AvoidedRefresh.user_id == user_id,
                    AvoidedRefresh.provider == provider,
                    AvoidedRefresh.after >= fetched_at,
                )
            ).scalar()
            after = max(fetched_at, as_utc(latest)) if latest is not None else fetched_at
            if now >= after + lifetime:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                conn.execute(
                    dialect.insert(AvoidedRefresh)
                    .values(user_id=user_id, provider=provider, after=after, at=now, calls=sources)
                    .on_conflict_do_nothing(index_elements=["user_id", "provider", "after"])
                )
                after = now
        with self._lock:
            self._last[key] = (fetched_at, after)

    def calls_avoided(self, user_id: int, days: int = REPORT_DAYS) -> dict[str, int]:
        """Holdings calls avoided per provider over the last ``days``."""
        since = self._clock() - timedelta(days=days)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(AvoidedRefresh.provider, func.sum(AvoidedRefresh.calls))
                .where(AvoidedRefresh.user_id == user_id, AvoidedRefresh.at >= since)
                .group_by(AvoidedRefresh.provider)
            )
            return {provider: int(total or 0) for provider, total in rows}

    def forget_old(self, keep_days: int = 3 * REPORT_DAYS) -> int:
        """Delete avoided refreshes long past the report's window (the scheduler's clean-up);
        the rule only ever looks at the latest one."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(AvoidedRefresh).where(
                    AvoidedRefresh.at < self._clock() - timedelta(days=keep_days)
                )
            )
        return int(result.rowcount or 0)
