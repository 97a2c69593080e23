"""A refresh someone asked for, held to the refresh cooldown (``REFRESH_COOLDOWN_SECONDS``).

A refresh a person (the positions page's button) or a model (``get_positions`` with
``refresh_provider``) asks for costs one holdings call per Plaid Item or SnapTrade account,
and Plaid bills some calls one by one. Within the cooldown after an Item or account was
fetched (by anyone: a read whose cache expired, a webhook, another refresh), a requested
refresh answers from the rows just fetched instead. The Items and accounts fetched longer
ago (one that failed, one repaired since) are still fetched; when none is left, no provider
is called at all and the answer says when a refresh can fetch again.

The cooldown is read from the database (each source's ``source_freshness.fetched_at`` and
the provider's ``position_snapshots.fetched_at``), so it holds across workers and hosts.
What it spared is counted in ``refused_refreshes``, one row per person, provider and day,
for the cost report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.clock import Clock
from services.models import RefusedRefresh
from services.positions.refresh import PositionRefresher
from services.positions.store import EMPTY_SNAPSHOT, PositionStore
from services.webhooks import EVERY_SOURCE, Freshness

# Counted refusals are kept this long (the cost report reads the last 30 days).
KEEP_DAYS = 92


@dataclass(frozen=True)
class CooldownPlan:
    # Nothing to fetch: every Item or account known was fetched within the cooldown.
    refuse: bool
    # The Items (institution slugs) or accounts (ids) answered from their rows.
    skip: frozenset[str]
    # When the first of them may be fetched again.
    retry_after_seconds: int | None


def plan_requested_refresh(
    provider: str,
    fetched_at: datetime | None,
    rows: list[Freshness],
    *,
    now: datetime,
    cooldown: timedelta,
) -> CooldownPlan:
    """What a requested refresh of ``provider`` fetches, given when its rows were fetched
    (``fetched_at``: its last whole refresh; ``rows``: each source's own fetch)."""
    if cooldown <= timedelta(0) or fetched_at is None:
        return CooldownPlan(False, frozenset(), None)  # no rows to answer from
    known = {r.source: r.fetched_at for r in rows if r.provider == provider}
    known.pop(EVERY_SOURCE, None)
    recent = {s: at for s, at in known.items() if at is not None and now - at < cooldown}
    whole_recent = now - fetched_at < cooldown
    if not recent and not whole_recent:
        return CooldownPlan(False, frozenset(), None)
    first = min([*recent.values(), *([fetched_at] if whole_recent else [])])
    return CooldownPlan(
        len(recent) == len(known), frozenset(recent), seconds(first + cooldown - now)
    )


def seconds(left: timedelta) -> int:
    """Whole seconds, rounded up, at least one: "retry after 0 seconds" would invite a loop."""
    return max(1, math.ceil(left.total_seconds()))


@dataclass(frozen=True)
class RequestedRefresh:
    """What a requested refresh did: ``cache_info``'s ``refresh`` entry of its provider."""

    done: bool  # something was fetched now
    reason: str | None = None  # "cooldown" when some or all rows answered from the cache
    retry_after_seconds: int | None = None
    sources_from_cache: tuple[str, ...] = ()

    def info(self) -> dict[str, Any]:
        return {
            "requested": True,
            "done": self.done,
            "reason": self.reason,
            "retry_after_seconds": self.retry_after_seconds,
            "sources_from_cache": list(self.sources_from_cache),
        }


class RefusedRefreshes:
    """The refreshes the cooldown answered from the cache, per person, provider and day."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def note(self, user_id: int, provider: str, *, refused: bool, calls: int) -> None:
        """One requested refresh, answered wholly (``refused``) or partly from the cache;
        ``calls`` holdings calls spared. Added in the database, so every worker counts once."""
        today = self._clock().date()
        row = RefusedRefresh
        with self._engine.begin() as conn:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(row).values(
                user_id=user_id, provider=provider, day=today, refused=int(refused), calls=calls
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["user_id", "provider", "day"],
                    set_={
                        "refused": row.refused + insert.excluded.refused,
                        "calls": row.calls + insert.excluded.calls,
                    },
                )
            )
            # Bounded without a scheduler: a person's old days go as new ones come.
            conn.execute(
                delete(row).where(
                    row.user_id == user_id,
                    row.provider == provider,
                    row.day < today - timedelta(days=KEEP_DAYS),
                )
            )

    def counts(self, user_id: int, days: int) -> dict[str, dict[str, int]]:
        """Per provider over the last ``days``: ``refused`` refreshes and ``calls`` spared."""
        since = (self._clock() - timedelta(days=days)).date()
        row = RefusedRefresh
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(row.provider, func.sum(row.refused), func.sum(row.calls))
                .where(row.user_id == user_id, row.day > since)
                .group_by(row.provider)
            )
            return {
                provider: {"refused": int(refused or 0), "calls": int(calls or 0)}
                for provider, refused, calls in rows
            }


class RequestedRefreshes:
    """Refreshes someone asked for, each Item or account at most once per cooldown."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        store: PositionStore,
        refresher: PositionRefresher,
        sources: Callable[[], list[Freshness]],
        cooldown_seconds: int,
    ) -> None:
        self._store = store
        self._refresher = refresher
        self._sources = sources  # each Item's or account's freshness, read now
        self._clock = clock
        self.cooldown = timedelta(seconds=cooldown_seconds)
        self.refusals = RefusedRefreshes(engine, clock)

    def refresh(self, provider: str) -> RequestedRefresh:
        """Fetch ``provider`` now, but not its Items or accounts fetched within the cooldown;
        raises the provider's error when what was left could not be fetched."""
        snapshot = self._store.snapshots().get(provider, EMPTY_SNAPSHOT)
        plan = plan_requested_refresh(
            provider,
            snapshot.fetched_at,
            self._sources(),
            now=self._clock(),
            cooldown=self.cooldown,
        )
        if plan.refuse or plan.skip:
            # Counted before fetching the rest: what was spared stays spared if that fails.
            self.refusals.note(
                self._store.user_id(), provider, refused=plan.refuse, calls=len(plan.skip)
            )
        fetched = not plan.refuse and self._refresher.refresh(
            provider,
            automatic=False,
            seen_generation=snapshot.generation,
            skip=plan.skip or None,
        )
        if not plan.refuse and not plan.skip:
            # Fetched now: by this caller, or by another one it waited for.
            return RequestedRefresh(done=True)
        return RequestedRefresh(
            done=fetched,
            reason="cooldown",
            retry_after_seconds=plan.retry_after_seconds,
            sources_from_cache=tuple(sorted(plan.skip)),
        )
