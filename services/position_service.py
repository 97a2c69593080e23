"""Normalized positions cached in SQL, one lifetime per provider.

The assistant asks for positions many times a day; each provider's rows are
served from the database while they are younger than that provider's cache
lifetime (``PROVIDER_CACHE_HOURS``: Plaid 72 h, SnapTrade 24 h by default) and
fetched again only when they expire or the person asks.

Guarantees:

* a refresh replaces a provider's rows in ONE transaction (readers see the old
  rows or the new ones); a failed or empty fetch changes nothing;
* a provider that cannot be fetched is served stale, with its error, and the
  other provider is unaffected;
* concurrent callers that find the same provider stale cause one fetch
  (a thread lock, plus a Postgres advisory lock across processes); the
  others wait and read the result.

``get_all_positions`` returns a :class:`PositionsResult` (plain dicts, no
pandas on the hot path); ``PositionsResult.to_dataframe()`` gives a DataFrame.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from sqlalchemy import Engine, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError

from services.errors import BrokerageHubError, Conflict, InvalidInput, ProviderError
from services.models import PositionRow, PositionSnapshot
from services.normalized import POSITION_FIELDS, PROVIDERS, NormalizedPosition
from services.position_fetchers import ProviderFetch
from services.users import ensure_user, user_id_for
from settings import PROVIDER_CACHE_HOURS

log = logging.getLogger(__name__)

_ROW_COLUMNS = [c for c in PositionRow.__table__.c if c.name not in ("id", "user_id")]


class PositionFetcher(Protocol):
    def __call__(self, *, automatic: bool) -> ProviderFetch: ...


@dataclass
class PositionsResult:
    """All providers' positions plus, per provider, where they came from and how old they are."""

    positions: list[dict[str, Any]]
    _cache_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cache_metadata(self) -> dict[str, dict[str, Any]]:
        return self._cache_metadata

    def to_dataframe(self) -> Any:
        import pandas as pd

        frame = pd.DataFrame(self.positions, columns=[*POSITION_FIELDS, "fetched_at"])
        frame.attrs["_cache_metadata"] = self._cache_metadata
        return frame


@dataclass(frozen=True)
class _Snapshot:
    fetched_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    generation: int


_EMPTY_SNAPSHOT = _Snapshot(None, None, None, 0)


class PositionService:
    CACHE_HOURS = 24
    # After a failed automatic refresh, serve stale rows for this long before the
    # next automatic attempt, so an outage does not turn 100 reads into 100 calls.
    FAILED_REFRESH_BACKOFF = timedelta(minutes=15)
    # How long a caller waits for another caller's refresh of the same provider.
    LOCK_WAIT_SECONDS = 45.0

    # Shared by every instance in the process: one lock per (user, provider).
    _thread_locks: ClassVar[dict[tuple[str, str], threading.Lock]] = {}
    _thread_locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        engine: Engine,
        user_email: str,
        fetchers: Mapping[str, PositionFetcher],
        clock: Callable[[], datetime],
        provider_priority: tuple[str, ...] = ("snaptrade", "plaid"),
    ) -> None:
        self._engine = engine
        # Which provider's rows count when an institution is reachable through both.
        self.provider_priority = provider_priority
        self.user_email = user_email
        self._fetchers = dict(fetchers)
        self._clock = clock
        self._user_id: int | None = None
        # Test hook: runs inside the replacement transaction, after the delete.
        self._after_delete_hook: Callable[[], None] | None = None

    # --- cache lifetimes ------------------------------------------------------------

    @classmethod
    def cache_hours_for_provider(cls, provider: str) -> int:
        return PROVIDER_CACHE_HOURS.get(provider, cls.CACHE_HOURS)

    def _check_cache_freshness(self, provider: str) -> tuple[bool, float | None]:
        """(is_fresh, hours since the rows were fetched, or None if never)."""
        return self._freshness(provider, self._snapshots().get(provider, _EMPTY_SNAPSHOT))

    def _freshness(self, provider: str, snapshot: _Snapshot) -> tuple[bool, float | None]:
        if snapshot.fetched_at is None:
            return False, None
        hours_ago = max(0.0, (self._clock() - snapshot.fetched_at).total_seconds() / 3600)
        return hours_ago < self.cache_hours_for_provider(provider), hours_ago

    # --- reading --------------------------------------------------------------------

    def get_all_positions(
        self, use_cache: bool = True, force_refresh: bool = False
    ) -> PositionsResult:
        """Every provider's positions; fresh caches are read, stale or missing ones fetched."""
        snapshots = self._snapshots()
        positions: list[dict[str, Any]] = []
        metadata: dict[str, dict[str, Any]] = {}
        fetched: dict[str, list[dict[str, Any]]] = {}
        stale = [
            provider
            for provider in self._fetchers
            if force_refresh
            or not use_cache
            or not self._freshness(provider, snapshots.get(provider, _EMPTY_SNAPSHOT))[0]
        ]
        # Stale providers are fetched side by side: the answer waits for the slowest
        # provider, not for the sum of both.
        if stale:
            with ThreadPoolExecutor(max_workers=len(stale)) as pool:
                futures = {
                    provider: pool.submit(
                        self._get_positions_df,
                        provider,
                        snapshots.get(provider, _EMPTY_SNAPSHOT),
                        force=force_refresh or not use_cache,
                    )
                    for provider in stale
                }
                for provider, future in futures.items():
                    fetched[provider], metadata[provider] = future.result()
        cached = self._read_rows([p for p in self._fetchers if p not in fetched])
        snapshots = self._snapshots() if fetched else snapshots
        for provider in self._fetchers:
            if provider in fetched:
                positions.extend(fetched[provider])
                continue
            rows = cached.get(provider, [])
            positions.extend(rows)
            metadata[provider] = self._metadata(
                provider, snapshots.get(provider, _EMPTY_SNAPSHOT), from_cache=True
            )
        return PositionsResult(positions=positions, _cache_metadata=metadata)

    def _get_positions_df(
        self, provider: str, snapshot: _Snapshot, *, force: bool
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Fetch a stale provider; on failure serve its last rows, marked stale, with its error."""
        now = self._clock()
        recently_failed = (
            not force
            and _last_attempt_failed(snapshot)
            and snapshot.last_attempt_at is not None
            and now - snapshot.last_attempt_at < self.FAILED_REFRESH_BACKOFF
        )
        error: str | None = snapshot.last_error if recently_failed else None
        if not recently_failed:
            try:
                fetched_now = self._refresh(
                    provider, automatic=True, seen_generation=snapshot.generation
                )
            except (ProviderError, ValueError, BrokerageHubError) as exc:
                error = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            else:
                new_snapshot = self._snapshots().get(provider, _EMPTY_SNAPSHOT)
                meta = self._metadata(provider, new_snapshot, from_cache=not fetched_now)
                return self._read_rows([provider]).get(provider, []), meta
        latest = self._snapshots().get(provider, _EMPTY_SNAPSHOT)
        meta = self._metadata(provider, latest, from_cache=True)
        meta.update(stale=True, error=error or latest.last_error)
        return self._read_rows([provider]).get(provider, []), meta

    def _metadata(self, provider: str, snapshot: _Snapshot, *, from_cache: bool) -> dict[str, Any]:
        is_fresh, hours_ago = self._freshness(provider, snapshot)
        ttl = self.cache_hours_for_provider(provider)
        next_refresh = snapshot.fetched_at + timedelta(hours=ttl) if snapshot.fetched_at else None
        return {
            "from_cache": from_cache,
            "cache_age_hours": hours_ago if from_cache else None,
            "ttl_hours": ttl,
            "fetched_at": snapshot.fetched_at,
            "next_refresh_after": next_refresh,
            "stale": snapshot.fetched_at is not None and not is_fresh,
            "error": None,
            "warning": snapshot.last_error if snapshot.fetched_at else None,
        }

    # --- refreshing -----------------------------------------------------------------

    def get_cached_positions(self) -> list[dict[str, Any]]:
        """Every provider's cached rows as they are: never calls a provider."""
        rows = self._read_rows(list(self._fetchers))
        return [row for provider in self._fetchers for row in rows.get(provider, [])]

    def refresh_provider_positions(self, provider: str) -> int:
        """Fetch one provider now and replace its rows; returns the number of rows stored.

        Raises ValueError when the provider has no accounts at all, and the
        provider's error when it cannot be fetched; the rows stay as they were.
        """
        self._require_provider(provider)
        seen = self._snapshots().get(provider, _EMPTY_SNAPSHOT).generation
        self._refresh(provider, automatic=False, seen_generation=seen)
        return len(self._read_rows([provider]).get(provider, []))

    def delete_provider_positions(self, provider: str, *, institution: str | None = None) -> int:
        """Remove one provider's rows (and its fetch time, so the next read fetches).

        With ``institution``, only that institution's rows go: the others keep
        their last known rows.
        """
        self._require_provider(provider)
        user_id = self._ensure_user_id()
        condition = [PositionRow.user_id == user_id, PositionRow.provider == provider]
        if institution is not None:
            condition.append(PositionRow.institution == institution)
        with self._engine.begin() as conn:
            deleted = conn.execute(delete(PositionRow).where(*condition)).rowcount
            conn.execute(
                update(PositionSnapshot)
                .where(PositionSnapshot.user_id == user_id, PositionSnapshot.provider == provider)
                .values(fetched_at=None)
            )
        return int(deleted or 0)

    def _refresh(self, provider: str, *, automatic: bool, seen_generation: int) -> bool:
        """Fetch and store under the single-flight lock; False when another caller just did."""
        with self._single_flight(provider):
            snapshot = self._snapshots().get(provider, _EMPTY_SNAPSHOT)
            if snapshot.generation != seen_generation:
                # Someone refreshed while we waited: use their outcome, fetch nothing.
                if _last_attempt_failed(snapshot):
                    raise ProviderError(str(snapshot.last_error), provider=provider)
                return False
            started = self._clock()
            try:
                fetch = self._fetchers[provider](automatic=automatic)
                if not fetch.positions and not fetch.failures:
                    raise ValueError(
                        f"{provider} returned no accounts; the cached positions were kept"
                    )
            except (BrokerageHubError, ValueError) as exc:
                message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
                self._record_attempt(provider, started, error=message)
                raise
            warning = "; ".join(
                f"{institution}: {error.message}" for institution, error in fetch.failures.items()
            )
            self._save_positions_to_db(provider, fetch, started, warning=warning or None)
            return True

    def _save_positions_to_db(
        self,
        provider: str,
        fetch: ProviderFetch,
        fetched_at: datetime,
        *,
        warning: str | None = None,
    ) -> None:
        """Replace the provider's rows in ONE transaction (rows of failed sources are kept)."""
        user_id = self._ensure_user_id()
        keep = []
        if fetch.keep_institutions:
            keep.append(PositionRow.institution.in_(sorted(fetch.keep_institutions)))
        if fetch.keep_accounts:
            keep.append(PositionRow.account_id.in_(sorted(fetch.keep_accounts)))
        condition = [PositionRow.user_id == user_id, PositionRow.provider == provider]
        if keep:
            condition.append(~or_(*keep))
        rows = [
            {**position.to_dict(), "user_id": user_id, "fetched_at": fetched_at}
            for position in fetch.positions
        ]
        for row in rows:
            row.pop("user_email", None)
        with self._engine.begin() as conn:
            conn.execute(delete(PositionRow).where(*condition))
            if self._after_delete_hook is not None:
                self._after_delete_hook()
            if rows:
                conn.execute(insert(PositionRow), rows)
            self._write_snapshot(conn, user_id, provider, fetched_at=fetched_at, error=warning)

    def _record_attempt(self, provider: str, attempted_at: datetime, *, error: str) -> None:
        user_id = self._ensure_user_id()
        with self._engine.begin() as conn:
            self._write_snapshot(conn, user_id, provider, attempted_at=attempted_at, error=error)

    def _write_snapshot(
        self,
        conn: Any,
        user_id: int,
        provider: str,
        *,
        fetched_at: datetime | None = None,
        attempted_at: datetime | None = None,
        error: str | None,
    ) -> None:
        values: dict[str, Any] = {
            "last_attempt_at": fetched_at or attempted_at,
            "last_error": error,
            "generation": PositionSnapshot.generation + 1,
        }
        if fetched_at is not None:
            values["fetched_at"] = fetched_at
        key = (PositionSnapshot.user_id == user_id) & (PositionSnapshot.provider == provider)
        if conn.execute(update(PositionSnapshot).where(key).values(**values)).rowcount == 0:
            values["generation"] = 1
            conn.execute(
                insert(PositionSnapshot).values(user_id=user_id, provider=provider, **values)
            )

    @contextmanager
    def _single_flight(self, provider: str) -> Iterator[None]:
        key = (self.user_email, provider)
        with self._thread_locks_guard:
            lock = self._thread_locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=self.LOCK_WAIT_SECONDS):
            raise Conflict(f"a refresh of {provider} is still running; try again shortly")
        try:
            if self._engine.dialect.name != "postgresql":
                yield
                return
            with self._engine.connect() as conn, conn.begin():
                conn.execute(text(f"SET LOCAL lock_timeout = '{int(self.LOCK_WAIT_SECONDS)}s'"))
                try:
                    conn.execute(select(func.pg_advisory_xact_lock(self._lock_key(provider))))
                except DBAPIError as exc:
                    raise Conflict(
                        f"a refresh of {provider} is still running in another process"
                    ) from exc
                # The lock is held until this transaction ends (or its process dies).
                yield
        finally:
            lock.release()

    def _lock_key(self, provider: str) -> int:
        digest = hashlib.sha256(f"positions:{self.user_email}:{provider}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    # --- storage helpers ------------------------------------------------------------

    def _require_provider(self, provider: str) -> None:
        if provider not in self._fetchers:
            allowed = ", ".join(sorted(self._fetchers)) or ", ".join(PROVIDERS)
            raise InvalidInput(
                f"unknown provider {provider!r}: allowed values are {allowed}", field="provider"
            )

    def _ensure_user_id(self) -> int:
        if self._user_id is None:
            ensure_user(self._engine, self.user_email, self._clock)
            self._user_id = user_id_for(self._engine, self.user_email)
        assert self._user_id is not None
        return self._user_id

    def _snapshots(self) -> dict[str, _Snapshot]:
        user_id = self._ensure_user_id()
        table = PositionSnapshot.__table__
        with self._engine.connect() as conn:
            rows = conn.execute(select(table).where(table.c.user_id == user_id)).mappings().all()
        return {
            row["provider"]: _Snapshot(
                fetched_at=_aware(row["fetched_at"]),
                last_attempt_at=_aware(row["last_attempt_at"]),
                last_error=row["last_error"],
                generation=row["generation"] or 0,
            )
            for row in rows
        }

    def _read_rows(self, providers: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not providers:
            return {}
        user_id = self._ensure_user_id()
        query = (
            select(*_ROW_COLUMNS)
            .where(PositionRow.user_id == user_id, PositionRow.provider.in_(providers))
            .order_by(PositionRow.provider, PositionRow.institution, PositionRow.id)
        )
        result: dict[str, list[dict[str, Any]]] = {p: [] for p in providers}
        # This is the hot path of every cached read: plain tuples zipped with the
        # column names cost a fraction of SQLAlchemy's mapping rows.
        names = [column.name for column in _ROW_COLUMNS]
        naive_times = self._engine.dialect.name == "sqlite"
        with self._engine.connect() as conn:
            for values in conn.execute(query):
                record = dict(zip(names, values, strict=True))
                record["user_email"] = self.user_email
                if naive_times:
                    record["as_of"] = _aware(record["as_of"])
                    record["fetched_at"] = _aware(record["fetched_at"])
                result[record["provider"]].append(record)
        return result


def _last_attempt_failed(snapshot: _Snapshot) -> bool:
    """The newest attempt failed (a partial success keeps fetched_at == last_attempt_at)."""
    return (
        snapshot.last_error is not None
        and snapshot.last_attempt_at is not None
        and (snapshot.fetched_at is None or snapshot.last_attempt_at > snapshot.fetched_at)
    )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        from datetime import UTC

        return value.replace(tzinfo=UTC)
    return value


def positions_from_rows(rows: list[dict[str, Any]]) -> list[NormalizedPosition]:
    return [NormalizedPosition(**{k: row[k] for k in POSITION_FIELDS}) for row in rows]
