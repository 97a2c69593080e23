"""Fetch one provider's positions and store them: once, however many callers found them due.

A refresh of the whole provider holds its lock; a refresh of some sources (the Plaid Items
or SnapTrade accounts a webhook named) holds only theirs, so one Item's refresh never
waits for another's. A caller that waited for someone else's refresh uses its outcome
instead of fetching again: the provider's generation tells it for a whole refresh, each
source's own generation for a refresh of sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from core.errors import BrokerageHubError, ProviderError
from services.positions.reads import PositionFetcher, SourceFreshnessReader
from services.positions.store import EMPTY_SNAPSHOT, PositionStore, last_attempt_failed
from services.single_flight import SingleFlight


class PositionRefresher:
    def __init__(
        self,
        *,
        store: PositionStore,
        fetchers: Mapping[str, PositionFetcher],
        clock: Callable[[], datetime],
        single_flight: SingleFlight,
        freshness: SourceFreshnessReader | None,
        lock_name: str,
    ) -> None:
        self._store = store
        self._fetchers = fetchers
        self._clock = clock
        self._single_flight = single_flight
        self._freshness = freshness
        self._lock_name = lock_name

    def refresh(
        self,
        provider: str,
        *,
        automatic: bool,
        seen_generation: int,
        only: frozenset[str] | None = None,
        seen_sources: Mapping[str, int] | None = None,
        skip: frozenset[str] | None = None,
    ) -> bool:
        """Fetch and store under the single-flight lock; False when another caller just did.

        ``only`` some sources (a webhook said they changed): the lock is held for those
        sources alone, so one Item's refresh never waits for another's; ``seen_sources`` are
        their generations when this caller found them due. ``skip`` sources keep their rows
        (fetched within the refresh cooldown); False when no other source was left."""
        key = f"{self._lock_name}:{provider}"
        lock = (
            self._single_flight.hold(key, provider)
            if only is None
            else self._single_flight.hold_parts(key, only, provider)
        )
        with lock:
            if only is None:
                snapshot = self._store.snapshots().get(provider, EMPTY_SNAPSHOT)
                if snapshot.generation != seen_generation:
                    if last_attempt_failed(snapshot):
                        # Someone tried while we waited and failed: share their outcome.
                        raise ProviderError(str(snapshot.last_error), provider=provider)
                    return False  # someone refreshed while we waited: use their rows
            else:
                only = self._still_due(provider, only, seen_sources or {})
                if not only:
                    return False  # each source was refreshed by someone else meanwhile
            started = self._clock()
            try:
                fetcher = self._fetchers[provider]
                narrowed: dict[str, set[str]] = {}
                if only is not None:
                    narrowed["only"] = set(only)
                if skip:
                    narrowed["skip"] = set(skip)
                fetch = fetcher(automatic=automatic, **narrowed)  # type: ignore[call-arg]
                if not fetch.positions and not fetch.failures:
                    if skip and not fetch.sources:
                        return False  # every Item or account there is was skipped
                    raise ValueError(
                        f"{provider} returned no accounts; the cached positions were kept"
                    )
            except (BrokerageHubError, ValueError) as exc:
                message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
                self._store.record_attempt(provider, started, error=message)
                raise
            warning = "; ".join(
                f"{institution}: {error.message}" for institution, error in fetch.failures.items()
            )
            freshness = self._freshness
            user_id = self._store.user_id()
            whole = only is None and not skip
            self._store.replace_rows(
                provider,
                fetch,
                started,
                warning=warning or None,
                partial=not whole,
                also=None
                if freshness is None
                else lambda conn: freshness.fetched(
                    conn, user_id, provider, fetch.fetched_sources, started, whole=whole
                ),
            )
            return True

    def _still_due(
        self, provider: str, sources: frozenset[str], seen: Mapping[str, int]
    ) -> frozenset[str]:
        """Those of ``sources`` nobody stored since this caller saw them due."""
        rows = self._freshness.read(self._store.user_id()) if self._freshness else []
        now = {r.source: r.generation for r in rows if r.provider == provider}
        return frozenset(s for s in sources if now.get(s, 0) == seen.get(s, 0))
