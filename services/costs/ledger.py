"""The provider call ledger: every HTTP request to Plaid or SnapTrade, for costs and forensics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from services.models import ProviderCall

log = logging.getLogger(__name__)

# A verification key lookup that found nothing is counted by the key store
# (``plaid_webhook_keys.failed_lookups``), not here: the ledger is what the providers'
# bills and quotas are read from, and lookups for made-up key ids are neither.
KEY_LOOKUP = "/webhook_verification_key/get"
# The cost report reads the last 30 days; three months are kept for looking into a bill.
KEEP_CALLS_FOR = timedelta(days=92)


class SqlCallLedger:
    """Writes one ``provider_calls`` row per request, in its own short transaction."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def record(
        self,
        *,
        provider: str,
        endpoint: str,
        subject: str | None,
        status: str,
        http_status: int | None,
        duration_ms: float,
    ) -> None:
        if endpoint.endswith(KEY_LOOKUP) and status != "ok":
            return
        with self._engine.begin() as conn:
            conn.execute(
                insert(ProviderCall).values(
                    provider=provider,
                    endpoint=endpoint[:200],
                    subject=subject,
                    status=status[:40],
                    http_status=http_status,
                    duration_ms=round(duration_ms, 2),
                    called_at=self._clock(),
                )
            )

    def forget_old(self) -> int:
        """Delete calls older than KEEP_CALLS_FOR (the scheduler's clean-up); how many went."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(ProviderCall).where(ProviderCall.called_at <= self._clock() - KEEP_CALLS_FOR)
            )
        return int(result.rowcount or 0)

    def count(
        self,
        *,
        provider: str | None = None,
        endpoint: str | None = None,
        days: int | None = None,
    ) -> int:
        """Calls recorded (of ``provider``, to ``endpoint``, within the last ``days`` days)."""
        query = select(func.count()).select_from(ProviderCall)
        if days is not None:
            query = query.where(ProviderCall.called_at >= self._clock() - timedelta(days=days))
        if provider:
            query = query.where(ProviderCall.provider == provider)
        if endpoint:
            query = query.where(ProviderCall.endpoint == endpoint)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def daily_counts(self, days: int = 30) -> list[dict[str, Any]]:
        """Calls per provider, endpoint and day over the last ``days`` days."""
        since = self._clock() - timedelta(days=days)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    ProviderCall.provider,
                    ProviderCall.endpoint,
                    ProviderCall.called_at,
                ).where(ProviderCall.called_at >= since)
            ).all()
        counts: dict[tuple[str, str, str], int] = {}
        for provider, endpoint, called_at in rows:
            key = (provider, endpoint, called_at.date().isoformat())
            counts[key] = counts.get(key, 0) + 1
        return [
            {"provider": p, "endpoint": e, "day": d, "calls": n}
            for (p, e, d), n in sorted(counts.items())
        ]
