"""When a provider's cached positions are due, per Item or account, with webhooks.

Without webhooks a provider's rows live for its lifetime (``*_CACHE_HOURS``). When every
one of its sources (Plaid Items, SnapTrade accounts) had a verified webhook within 48 h,
automatic refreshes wait for the next webhook or the safety lifetime
(``WEBHOOK_SAFETY_HOURS``); a webhook that says a source changed makes that source alone
due. ``fresh_by`` says which rule holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.webhooks import EVERY_SOURCE, Freshness


@dataclass(frozen=True)
class RefreshPlan:
    stale: bool
    # None: every source; else only these (a webhook said they changed)
    sources: frozenset[str] | None
    fresh_by: str  # "webhook" | "lifetime"
    lifetime_hours: int
    due: tuple[str, ...]
    # When the oldest of the provider's rows were fetched: the provider's whole refresh, or
    # later when every source has been refreshed alone since (webhooks).
    as_of: datetime | None


def plan_refresh(
    provider: str,
    fetched_at: datetime | None,
    *,
    ttl_hours: int,
    safety_hours: int,
    rows: list[Freshness],
    now: datetime,
    force: bool = False,
) -> RefreshPlan:
    mine = [r for r in rows if r.provider == provider]
    sources = [r for r in mine if r.source != EVERY_SOURCE]
    due = tuple(sorted(r.source for r in mine if r.due_since is not None))
    fed = bool(sources) and all(r.fed_by_webhooks(now) for r in sources)
    lifetime = safety_hours if fed else ttl_hours
    fresh_by = "webhook" if fed else "lifetime"
    as_of = fetched_at
    if as_of is not None and sources and all(r.fetched_at is not None for r in sources):
        as_of = max(as_of, min(r.fetched_at for r in sources if r.fetched_at is not None))
    expired = as_of is None or now - as_of >= timedelta(hours=lifetime)
    if force or expired or EVERY_SOURCE in due:
        return RefreshPlan(True, None, fresh_by, lifetime, due, as_of)
    if due:
        return RefreshPlan(True, frozenset(due), fresh_by, lifetime, due, as_of)
    return RefreshPlan(False, None, fresh_by, lifetime, due, as_of)
