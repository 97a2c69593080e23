"""Normalized positions cached in SQL, one lifetime per provider.

The assistant asks for positions many times a day; each provider's rows are
served from the database while they are younger than that provider's cache
lifetime (``PLAID_CACHE_HOURS`` 72 h and ``SNAPTRADE_CACHE_HOURS`` 24 h by default) and
fetched again only when they expire or the person asks.

Guarantees:

* a refresh replaces a provider's rows in ONE transaction (readers see the old
  rows or the new ones); a failed or empty fetch changes nothing;
* a provider that cannot be fetched is served stale, with its error, and the
  other provider is unaffected;
* concurrent callers that find the same provider stale cause one fetch
  (a thread lock, plus a Postgres advisory lock across processes); the
  others wait and read the result;
* a disabled provider (its ``*_ENV`` is ``disabled``) is never fetched and its
  rows left from before are neither read nor counted; ``cache_info`` says it is disabled.

``get_all_positions`` returns a :class:`PositionsResult` (plain dicts, no
pandas on the hot path); ``PositionsResult.to_dataframe()`` gives a DataFrame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from core.errors import (
    BrokerageHubError,
    InvalidInput,
    ProviderDisabled,
    ProviderError,
)
from core.normalized import PROVIDERS
from services.positions.cooldown import RequestedRefresh, RequestedRefreshes
from services.positions.freshness import RefreshPlan, plan_refresh
from services.positions.reads import (
    CacheState,
    PositionFetcher,
    PositionsResult,
    SourceFreshnessReader,
    disabled_metadata,
)
from services.positions.refresh import PositionRefresher
from services.positions.store import (
    EMPTY_SNAPSHOT,
    PositionRowWriter,
    PositionStore,
    Snapshot,
    last_attempt_failed,
)
from services.single_flight import SingleFlight
from services.webhooks import EVERY_SOURCE, Freshness, RefreshSavings
from settings import Settings, load_settings

log = logging.getLogger(__name__)


class _CacheLifetime:
    """``cache_hours_for_provider(provider)``: on a service, the lifetimes it was built with;
    on the class (as a REPL calls it), the configured ones."""

    def __get__(self, service: PositionService | None, owner: type) -> Callable[[str], int]:
        if service is None:
            return lambda provider: load_settings().provider_cache_hours.get(
                provider, PositionService.CACHE_HOURS
            )
        return lambda provider: service.cache_hours.get(provider, PositionService.CACHE_HOURS)


class PositionService:
    CACHE_HOURS = 24
    cache_hours_for_provider = _CacheLifetime()
    # After a failed automatic refresh, serve stale rows for this long before the
    # next automatic attempt, so an outage does not turn 100 reads into 100 calls.
    FAILED_REFRESH_BACKOFF = timedelta(minutes=15)
    # How long a caller waits for another caller's refresh of the same provider.
    LOCK_WAIT_SECONDS = 45.0

    def __init__(
        self,
        *,
        engine: Engine,
        user_email: str,
        fetchers: Mapping[str, PositionFetcher],
        clock: Callable[[], datetime],
        provider_priority: tuple[str, ...] = ("snaptrade", "plaid"),
        cache_hours: Mapping[str, int] | None = None,
        row_writer: PositionRowWriter | None = None,
        environments: Mapping[str, str] | None = None,
        freshness: SourceFreshnessReader | None = None,
        safety_hours: int = 168,
        savings: RefreshSavings | None = None,
        refresh_cooldown_seconds: int = Settings.refresh_cooldown_seconds,
    ) -> None:
        # Hours each provider's rows are served from the cache (the *_CACHE_HOURS settings;
        # their defaults when none are given).
        if cache_hours is None:
            cache_hours = load_settings({}, use_dotenv=False).provider_cache_hours
        self.cache_hours: dict[str, int] = dict(cache_hours)
        # Which provider's rows count when an institution is reachable through both.
        self.provider_priority = provider_priority
        self.user_email = user_email
        # Each provider's environment (the *_ENV settings); a disabled one is never fetched.
        self.environments: dict[str, str] = dict(environments or {})
        self.disabled = tuple(p for p in PROVIDERS if self.environments.get(p) == "disabled")
        self._fetchers = {p: f for p, f in fetchers.items() if p not in self.disabled}
        self._clock = clock
        self._store = PositionStore(engine, user_email, clock, row_writer)
        self._source_freshness = freshness
        self._refresher = PositionRefresher(
            store=self._store,
            fetchers=self._fetchers,
            clock=clock,
            single_flight=SingleFlight(engine, wait_seconds=self.LOCK_WAIT_SECONDS),
            freshness=freshness,
            lock_name=f"positions:{user_email}",
        )
        self.safety_hours = safety_hours
        self._savings = savings
        self.requested = RequestedRefreshes(
            engine, clock, self._store, self._refresher, self._sources, refresh_cooldown_seconds
        )

    # --- cache lifetimes ------------------------------------------------------------

    def _check_cache_freshness(self, provider: str) -> tuple[bool, float | None]:
        """(is_fresh, hours since the rows were fetched, or None if never)."""
        return self._freshness(provider, self._store.snapshots().get(provider, EMPTY_SNAPSHOT))

    def _freshness(self, provider: str, snapshot: Snapshot) -> tuple[bool, float | None]:
        if snapshot.fetched_at is None:
            return False, None
        hours_ago = max(0.0, (self._clock() - snapshot.fetched_at).total_seconds() / 3600)
        return hours_ago < self.cache_hours_for_provider(provider), hours_ago

    def _sources(self, conn: Connection | None = None) -> list[Freshness]:
        if self._source_freshness is None:
            return []
        return self._source_freshness.read(self._store.user_id(), conn)

    def _plan(
        self, provider: str, snapshot: Snapshot, sources: list[Freshness], force: bool = False
    ) -> RefreshPlan:
        return plan_refresh(
            provider,
            snapshot.fetched_at,
            ttl_hours=self.cache_hours_for_provider(provider),
            safety_hours=self.safety_hours,
            rows=sources,
            now=self._clock(),
            force=force,
        )

    # --- reading --------------------------------------------------------------------

    def ensure_fresh(self, *, force: bool = False) -> CacheState:
        """Fetch the providers whose cache expired (all of them with ``force``), then say what
        every provider's cache holds now. Reads no rows: a warm read is one small query."""
        snapshots = self._store.snapshots()
        sources = self._sources()
        plans = {
            p: self._plan(p, snapshots.get(p, EMPTY_SNAPSHOT), sources, force)
            for p in self._fetchers
        }
        stale = [provider for provider in self._fetchers if plans[provider].stale]
        self._note_savings(plans, sources)
        metadata: dict[str, dict[str, Any]] = {}
        # Stale providers are fetched side by side: the answer waits for the slowest
        # provider, not for the sum of both.
        if stale:
            with ThreadPoolExecutor(max_workers=len(stale)) as pool:
                futures = {
                    provider: pool.submit(
                        self._fetch_stale,
                        provider,
                        snapshots.get(provider, EMPTY_SNAPSHOT),
                        force=force,
                        only=plans[provider].sources,
                        seen_sources={
                            r.source: r.generation for r in sources if r.provider == provider
                        },
                    )
                    for provider in stale
                }
                for provider, future in futures.items():
                    metadata[provider] = future.result()
            snapshots = self._store.snapshots()
        for provider in self._fetchers:
            if provider not in metadata:
                metadata[provider] = self._metadata(
                    provider,
                    snapshots.get(provider, EMPTY_SNAPSHOT),
                    from_cache=True,
                    plan=plans[provider],
                )
        metadata.update(self._disabled_metadata())
        return CacheState({p: snapshots.get(p, EMPTY_SNAPSHOT) for p in self._fetchers}, metadata)

    def user_id(self) -> int:
        """The database id of the user whose positions these are."""
        return self._store.user_id()

    def today(self) -> date:
        return self._clock().date()

    def peek(self, conn: Connection | None = None) -> tuple[CacheState, bool]:
        """The cache as it is, and whether a read would fetch a provider first (never fetches)."""
        snapshots = self._store.snapshots(conn)
        sources = self._sources(conn)
        state = self.state_of(
            {p: snapshots.get(p, EMPTY_SNAPSHOT) for p in self._fetchers}, sources
        )
        plans = {p: self._plan(p, state.snapshots[p], sources) for p in self._fetchers}
        self._note_savings(plans, sources)
        return state, any(plan.stale for plan in plans.values())

    def _note_savings(
        self,
        plans: Mapping[str, RefreshPlan],
        sources: list[Freshness],
    ) -> None:
        """Count the refreshes the lifetime rule would have made where webhooks made them
        unnecessary (free unless a provider's rows outlived its lifetime)."""
        if self._savings is None:
            return
        for provider, plan in plans.items():
            if plan.stale or plan.fresh_by != "webhook":
                continue
            self._savings.note_read(
                self._store.user_id(),
                provider,
                fetched_at=plan.as_of,
                ttl_hours=self.cache_hours_for_provider(provider),
                sources=sum(
                    1 for r in sources if r.provider == provider and r.source != EVERY_SOURCE
                ),
            )

    def connect(self) -> Connection:
        """A connection for a caller that reads the cache state and more in one go."""
        return self._store.connect()

    def state_of(
        self, snapshots: dict[str, Snapshot], sources: list[Freshness] | None = None
    ) -> CacheState:
        """What ``snapshots`` say about each provider's cache, as served from it
        (``sources``: what webhooks said, read now when not given)."""
        if sources is None:
            sources = self._sources()
        return CacheState(
            snapshots,
            {
                **{
                    p: self._metadata(
                        p, snapshots[p], from_cache=True, plan=self._plan(p, snapshots[p], sources)
                    )
                    for p in snapshots
                },
                **self._disabled_metadata(),
            },
        )

    def read_cached(self) -> tuple[list[dict[str, Any]], dict[str, Snapshot]]:
        """Every provider's cached rows and the snapshots they belong to, read together."""
        rows, snapshots = self._store.read_consistent(list(self._fetchers))
        return (
            [row for provider in self._fetchers for row in rows.get(provider, [])],
            {p: snapshots.get(p, EMPTY_SNAPSHOT) for p in self._fetchers},
        )

    def get_all_positions(
        self, use_cache: bool = True, force_refresh: bool = False
    ) -> PositionsResult:
        """Every provider's positions; fresh caches are read, stale or missing ones fetched."""
        state = self.ensure_fresh(force=force_refresh or not use_cache)
        rows, _ = self.read_cached()
        return PositionsResult(positions=rows, _cache_metadata=state.metadata)

    def _fetch_stale(
        self,
        provider: str,
        snapshot: Snapshot,
        *,
        force: bool,
        only: frozenset[str] | None = None,
        seen_sources: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """Fetch a stale provider; on failure its last rows stay, marked stale, with its error."""
        now = self._clock()
        recently_failed = (
            not force
            and last_attempt_failed(snapshot)
            and snapshot.last_attempt_at is not None
            and now - snapshot.last_attempt_at < self.FAILED_REFRESH_BACKOFF
        )
        error: str | None = snapshot.last_error if recently_failed else None
        if not recently_failed:
            try:
                fetched_now = self._refresher.refresh(
                    provider,
                    automatic=True,
                    seen_generation=snapshot.generation,
                    only=only,
                    seen_sources=seen_sources,
                )
            except (ProviderError, ValueError, BrokerageHubError) as exc:
                error = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            else:
                new_snapshot = self._store.snapshots().get(provider, EMPTY_SNAPSHOT)
                plan = self._plan(provider, new_snapshot, self._sources())  # what is due now
                return self._metadata(provider, new_snapshot, from_cache=not fetched_now, plan=plan)
        latest = self._store.snapshots().get(provider, EMPTY_SNAPSHOT)
        plan = self._plan(provider, latest, self._sources())
        meta = self._metadata(provider, latest, from_cache=True, plan=plan)
        meta.update(stale=True, error=error or latest.last_error)
        return meta

    def _metadata(
        self, provider: str, snapshot: Snapshot, *, from_cache: bool, plan: RefreshPlan
    ) -> dict[str, Any]:
        # The answer is as old as its oldest rows (sources refreshed alone are younger).
        as_of = plan.as_of
        hours_ago = (
            max(0.0, (self._clock() - as_of).total_seconds() / 3600) if as_of is not None else None
        )
        ttl = self.cache_hours_for_provider(provider)
        # Fed by webhooks, the rows live until the next webhook or the safety lifetime.
        lifetime = plan.lifetime_hours
        is_fresh = hours_ago is not None and hours_ago < lifetime
        return {
            "from_cache": from_cache,
            "cache_age_hours": hours_ago if from_cache else None,
            "ttl_hours": ttl,
            "fresh_by": plan.fresh_by,
            "due_sources": list(plan.due),
            "fetched_at": as_of,
            "next_refresh_after": as_of + timedelta(hours=lifetime) if as_of else None,
            "stale": as_of is not None and not is_fresh,
            "error": None,
            "warning": snapshot.last_error if snapshot.fetched_at else None,
            "environment": self.environments.get(provider),
            "disabled": False,
        }

    def _disabled_metadata(self) -> dict[str, dict[str, Any]]:
        """The cache entry of each disabled provider: nothing fetched, nothing served."""
        return {provider: disabled_metadata(provider) for provider in self.disabled}

    # --- refreshing -----------------------------------------------------------------

    def get_cached_positions(self) -> list[dict[str, Any]]:
        """Every provider's cached rows as they are: never calls a provider."""
        rows = self._store.read_rows(list(self._fetchers))
        return [row for provider in self._fetchers for row in rows.get(provider, [])]

    def refresh_on_request(self, provider: str) -> RequestedRefresh:
        """As ``refresh_provider_positions``, held to the cooldown (``position_cooldown``)."""
        self._require_provider(provider, enabled=True)
        return self.requested.refresh(provider)

    def refresh_provider_positions(self, provider: str) -> int:
        """Fetch one provider now and replace its rows; returns the number of rows stored.

        Raises ValueError when the provider has no accounts at all, and the
        provider's error when it cannot be fetched (ProviderDisabled when it is
        disabled); the rows stay as they were.
        """
        self._require_provider(provider, enabled=True)
        seen = self._store.snapshots().get(provider, EMPTY_SNAPSHOT).generation
        self._refresher.refresh(provider, automatic=False, seen_generation=seen)
        return len(self._store.read_rows([provider]).get(provider, []))

    def delete_provider_positions(self, provider: str, *, institution: str | None = None) -> int:
        """Remove one provider's rows (and its fetch time, so the next read fetches).

        With ``institution``, only that institution's rows go: the others keep
        their last known rows. A disabled provider's rows can be removed too (no call).
        """
        if provider not in self.disabled:
            self._require_provider(provider)
        return self._store.drop_rows(provider, institution=institution)

    # --- storage helpers ------------------------------------------------------------

    def _require_provider(self, provider: str, *, enabled: bool = False) -> None:
        if enabled and provider in self.disabled:
            raise ProviderDisabled(provider)
        if provider not in self._fetchers:
            allowed = ", ".join(sorted(self._fetchers)) or ", ".join(PROVIDERS)
            raise InvalidInput(
                f"unknown provider {provider!r}: allowed values are {allowed}", field="provider"
            )
