"""The cached activities and each source's sync state, written one source window at a time.

A sync replaces the rows of one source from the window's first day on, in one transaction:
a corrected activity that comes back under a new id, or not at all, leaves no stale copy.
An empty answer for a window that held rows keeps them (it cannot be told from an outage
that answers "nothing"); a failed fetch only records its error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.activities import NormalizedActivity
from services.clock import Clock, as_utc
from services.models import ActivityRow, ActivitySync
from services.storage import ensure_user, user_id_for

# The sync-state row that says when a provider's sources were listed, not a source.
LISTED = "*"
# Bound the IN list of ids a replacement also clears (an id that moved out of the window).
ID_CHUNK = 500


@dataclass(frozen=True)
class SyncState:
    provider: str
    source: str
    institution: str
    synced_from: date | None
    synced_through: date | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    generation: int
    # A webhook said new activity is waiting (None: nothing announced).
    due_since: datetime | None = None


class ActivityStore:
    """One person's cached activities."""

    def __init__(self, engine: Engine, user_email: str, clock: Clock) -> None:
        self._engine = engine
        self.user_email = user_email
        self._clock = clock
        self._user_id: int | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    def user_id(self) -> int:
        if self._user_id is None:
            ensure_user(self._engine, self.user_email, self._clock)
            self._user_id = user_id_for(self._engine, self.user_email)
        assert self._user_id is not None
        return self._user_id

    def syncs(self, conn: Connection | None = None) -> list[SyncState]:
        """Every source's sync state: the one small query a cached read makes."""
        if conn is None:
            with self._engine.connect() as own:
                return self.syncs(own)
        table = ActivitySync.__table__
        rows = conn.execute(
            select(table)
            .where(table.c.user_id == self.user_id())
            .order_by(table.c.provider, table.c.source)
        ).all()
        return [
            SyncState(
                provider=row.provider,
                source=row.source,
                institution=row.institution,
                synced_from=row.synced_from,
                synced_through=row.synced_through,
                last_success_at=as_utc(row.last_success_at),
                last_attempt_at=as_utc(row.last_attempt_at),
                last_error=row.last_error,
                generation=row.generation,
                due_since=as_utc(row.due_since),
            )
            for row in rows
        ]

    def replace_window(
        self,
        provider: str,
        source: str,
        institution: str,
        *,
        start: date,
        end: date,
        activities: list[NormalizedActivity],
    ) -> bool:
        """Store a source's answer for ``start``..``end``; False when an empty answer kept
        the rows it would have replaced."""
        now = self._clock()
        user_id = self.user_id()
        # The provider's last word on an id wins; a repeated id in one answer is one row.
        unique = {(a.account_id, a.activity_id): a for a in activities}
        in_window = (
            ActivityRow.user_id == user_id,
            ActivityRow.provider == provider,
            ActivityRow.source == source,
        )
        with self._engine.begin() as conn:
            self._upsert_state(conn, provider, source, institution, last_attempt_at=now)
            if not unique:
                held = conn.execute(
                    select(func.count())
                    .select_from(ActivityRow)
                    .where(*in_window, ActivityRow.trade_date >= start)
                ).scalar_one()
                if held:
                    self._upsert_state(
                        conn,
                        provider,
                        source,
                        institution,
                        last_success_at=now,
                        last_error=None,
                        due_since=None,
                    )
                    return False
            conn.execute(delete(ActivityRow).where(*in_window, ActivityRow.trade_date >= start))
            ids = sorted({activity_id for _, activity_id in unique})
            for chunk in _chunks(ids, ID_CHUNK):
                conn.execute(
                    delete(ActivityRow).where(*in_window, ActivityRow.activity_id.in_(chunk))
                )
            if unique:
                conn.execute(
                    insert(ActivityRow),
                    [_row(user_id, source, a, now) for a in unique.values()],
                )
            state = conn.execute(
                select(ActivitySync.synced_from).where(
                    ActivitySync.user_id == user_id,
                    ActivitySync.provider == provider,
                    ActivitySync.source == source,
                )
            ).scalar_one_or_none()
            self._upsert_state(
                conn,
                provider,
                source,
                institution,
                synced_from=min(start, state) if state else start,
                synced_through=end,
                last_success_at=now,
                last_error=None,
                due_since=None,
                generation=ActivitySync.generation + 1,
            )
        return True

    def record_failure(self, provider: str, source: str, institution: str, error: str) -> None:
        """A failed sync keeps every stored row and says why it failed."""
        with self._engine.begin() as conn:
            self._upsert_state(
                conn,
                provider,
                source,
                institution,
                last_attempt_at=self._clock(),
                last_error=error[:2000],
            )

    def mark_listed(self, provider: str) -> None:
        """Note when ``provider``'s sources were last listed (the row of source ``*``), so a
        provider with no sources yet is not listed again on every read."""
        now = self._clock()
        with self._engine.begin() as conn:
            self._upsert_state(conn, provider, LISTED, "", last_success_at=now, last_attempt_at=now)

    def drop_sources(self, provider: str, keep: Iterable[str]) -> int:
        """Forget the sources no longer linked (an Item removed, an account gone)."""
        keep = {*keep, LISTED}
        user_id = self.user_id()
        gone = [s.source for s in self.syncs() if s.provider == provider and s.source not in keep]
        if not gone:
            return 0
        with self._engine.begin() as conn:
            for table in (ActivityRow, ActivitySync):
                conn.execute(
                    delete(table).where(
                        table.user_id == user_id,
                        table.provider == provider,
                        table.source.in_(gone),
                    )
                )
        return len(gone)

    def _upsert_state(
        self, conn: Connection, provider: str, source: str, institution: str, **values: Any
    ) -> None:
        key = {"user_id": self.user_id(), "provider": provider, "source": source}
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(ActivitySync)
            .values(**key, institution=institution, generation=0)
            .on_conflict_do_nothing(index_elements=list(key))
        )
        conn.execute(
            update(ActivitySync)
            .where(*(getattr(ActivitySync, k) == v for k, v in key.items()))
            .values(institution=institution, **values)
        )


def _row(user_id: int, source: str, activity: NormalizedActivity, now: datetime) -> dict[str, Any]:
    row = activity.to_dict()
    del row["user_email"]
    return {**row, "user_id": user_id, "source": source, "fetched_at": now}


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
