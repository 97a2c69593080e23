"""Each Plaid Item's and SnapTrade account's freshness, as webhooks tell it.

A webhook marks a source due (its next read refreshes that source alone) and notes that
webhooks reach it. A source reached by a webhook within ``WEBHOOK_WINDOW`` is *fed by
webhooks*: automatic refreshes wait for its next webhook, or for the safety lifetime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.clock import as_utc
from services.models import SourceFreshness

WEBHOOK_WINDOW = timedelta(hours=48)
# A source named "*" stands for every source of the provider (a new account appeared).
EVERY_SOURCE = "*"


@dataclass(frozen=True)
class Freshness:
    provider: str
    source: str
    due_since: datetime | None
    last_webhook_at: datetime | None
    fetched_at: datetime | None
    generation: int = 0

    def fed_by_webhooks(self, now: datetime) -> bool:
        return self.last_webhook_at is not None and now - self.last_webhook_at < WEBHOOK_WINDOW


class FreshnessStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self, user_id: int, conn: Connection | None = None) -> list[Freshness]:
        if conn is None:
            with self._engine.connect() as own:
                return self.read(user_id, own)
        table = SourceFreshness.__table__
        rows = conn.execute(select(table).where(table.c.user_id == user_id)).mappings()
        return [
            Freshness(
                row["provider"],
                row["source"],
                as_utc(row["due_since"]),
                as_utc(row["last_webhook_at"]),
                as_utc(row["fetched_at"]),
                row["generation"] or 0,
            )
            for row in rows
        ]

    def mark(
        self,
        conn: Connection,
        user_id: int,
        provider: str,
        source: str,
        *,
        sent_at: datetime,
        due: bool,
    ) -> bool:
        """Note a webhook for the source; with ``due``, its holdings become due unless they
        were fetched after the event was sent. True when it became due."""
        self._ensure(conn, user_id, provider, source)
        key = self._key(user_id, provider, source)
        conn.execute(update(SourceFreshness).where(*key).values(last_webhook_at=sent_at))
        if not due:
            return False
        fetched = conn.execute(select(SourceFreshness.fetched_at).where(*key)).scalar()
        fetched = as_utc(fetched)
        # Plaid's iat has whole seconds: a fetch within the event's second may predate it.
        if fetched is not None and fetched >= sent_at + timedelta(seconds=1):
            return False  # the data already fetched is newer than the news
        conn.execute(
            update(SourceFreshness)
            .where(*key, SourceFreshness.due_since.is_(None))
            .values(due_since=sent_at)
        )
        return True

    def fetched(
        self,
        conn: Connection,
        user_id: int,
        provider: str,
        sources: Iterable[str],
        at: datetime,
        *,
        whole: bool,
    ) -> None:
        """The sources' holdings were stored at ``at`` (in the transaction of ``conn``, the
        one that stored them): no longer due, and their generation moves. ``whole``: every
        source was asked for, so a due "every source" mark is met too."""
        for source in {*sources, EVERY_SOURCE} if whole else set(sources):
            self._ensure(conn, user_id, provider, source)
            conn.execute(
                update(SourceFreshness)
                .where(*self._key(user_id, provider, source))
                .values(fetched_at=at, due_since=None, generation=SourceFreshness.generation + 1)
            )

    def _ensure(self, conn: Connection, user_id: int, provider: str, source: str) -> None:
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(SourceFreshness)
            .values(user_id=user_id, provider=provider, source=source)
            .on_conflict_do_nothing(index_elements=["user_id", "provider", "source"])
        )

    @staticmethod
    def _key(user_id: int, provider: str, source: str) -> tuple[Any, ...]:
        return (
            SourceFreshness.user_id == user_id,
            SourceFreshness.provider == provider,
            SourceFreshness.source == source,
        )
