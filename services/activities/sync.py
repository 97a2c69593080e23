"""Fetching the activity history that is due, one source (Plaid Item, SnapTrade account)
at a time, one provider at a time across every process.

The first sync of a source reads 24 months; later ones read only from the last synced day
minus ``lookback_days`` (for late corrections) to today, and replace that window. A source
is due when its last success is older than its provider's lifetime. A failure of one
source keeps its stored rows and records the error; the other sources go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from core.activities import NormalizedActivity
from core.errors import BrokerageHubError, ProviderError, SecretStoreError
from core.normalized import institution_display_name
from providers.plaid.activities import fetch_plaid_transactions, normalize_plaid_transactions
from providers.plaid.items import institution_slug_of
from providers.snaptrade.activities import (
    fetch_snaptrade_activities,
    normalize_snaptrade_activities,
)
from services.activities.store import ActivityStore, SyncState
from services.clock import Clock
from services.connections import ProviderAccess
from services.single_flight import SingleFlight

log = logging.getLogger(__name__)

HISTORY_DAYS = 730  # 24 months, as far back as Plaid reaches
# A failed sync is tried again after this, not on every read.
RETRY_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Source:
    provider: str
    source: str  # a Plaid Item's institution slug, or a SnapTrade account id
    institution: str
    fetch: Callable[[date, date], list[NormalizedActivity]]


def due(syncs: list[SyncState], provider: str, ttl_hours: int, now: datetime) -> bool:
    """Whether ``provider``'s history should be synced before answering: never synced, or
    a source's last success older than the lifetime (a recent failure waits a while)."""
    mine = [s for s in syncs if s.provider == provider]
    if not mine:
        return True
    return any(source_due(state, ttl_hours, now) for state in mine)


def source_due(state: SyncState, ttl_hours: int, now: datetime) -> bool:
    """A webhook announced new activity, or the last success is older than the lifetime
    (a recent failure waits a while before the next try)."""
    tried = state.last_attempt_at is not None and now - state.last_attempt_at < RETRY_AFTER
    if state.due_since is not None and not (
        state.last_attempt_at is not None and state.last_attempt_at > state.due_since and tried
    ):
        return True
    fresh = state.last_success_at is not None and now - state.last_success_at < timedelta(
        hours=ttl_hours
    )
    return not fresh and not tried


class ActivitySyncer:
    def __init__(
        self,
        store: ActivityStore,
        access: ProviderAccess,
        *,
        clock: Clock,
        snaptrade_accounts: Callable[[], list[dict[str, Any]]],
        ttl_hours: dict[str, int],
        lookback_days: int,
        single_flight: SingleFlight,
    ) -> None:
        self._store = store
        self._access = access
        self._clock = clock
        self._snaptrade_accounts = snaptrade_accounts
        self.ttl_hours = ttl_hours
        self.lookback_days = lookback_days
        self._single_flight = single_flight

    def sync(self, provider: str, *, force: bool = False) -> dict[str, Any]:
        """Sync ``provider``'s due sources (all of them with ``force``); what happened."""
        key = f"activities:{self._store.user_email}:{provider}"
        with self._single_flight.hold(key, f"the {provider} activity history"):
            # Another process may have synced while this one waited for the lock.
            if not force and not due(
                self._store.syncs(), provider, self.ttl_hours[provider], self._clock()
            ):
                return {"provider": provider, "synced": 0, "errors": {}}
            return self._sync_sources(provider, force=force)

    def _sync_sources(self, provider: str, *, force: bool = False) -> dict[str, Any]:
        sources = self._plaid_sources() if provider == "plaid" else self._snaptrade_sources()
        self._store.drop_sources(provider, keep=[s.source for s in sources])
        states = {s.source: s for s in self._store.syncs() if s.provider == provider}
        today = self._clock().date()
        errors: dict[str, str] = {}
        changed = 0
        now = self._clock()
        for source in sources:
            state = states.get(source.source)
            if (
                not force
                and state is not None
                and not source_due(state, self.ttl_hours[provider], now)
            ):
                continue  # fresh: another source was the one due
            start, end = self._window(state, today)
            try:
                rows = source.fetch(start, end)
            except (ProviderError, SecretStoreError) as exc:
                log.warning("%s activity sync of %s failed: %s", provider, source.source, exc)
                self._store.record_failure(provider, source.source, source.institution, exc.message)
                errors[source.institution] = exc.message
                continue
            changed += self._store.replace_window(
                provider, source.source, source.institution, start=start, end=end, activities=rows
            )
        self._store.mark_listed(provider)
        return {"provider": provider, "synced": changed, "errors": errors}

    def _window(self, state: SyncState | None, today: date) -> tuple[date, date]:
        if state is None or state.synced_through is None:
            return today - timedelta(days=HISTORY_DAYS), today
        start = state.synced_through - timedelta(days=self.lookback_days)
        if state.synced_from is not None:
            start = max(start, state.synced_from)
        return start, today

    # --- sources ---------------------------------------------------------------------------

    def _plaid_sources(self) -> list[Source]:
        try:
            names = self._access.plaid_token_names()
        except BrokerageHubError as exc:
            raise ProviderError(exc.message, provider="plaid") from exc
        return [self._plaid_source(name) for name in names]

    def _plaid_source(self, secret_name: str) -> Source:
        slug = institution_slug_of(secret_name)
        email = self._access.user_email

        def fetch(start: date, end: date) -> list[NormalizedActivity]:
            raw = fetch_plaid_transactions(
                self._access.plaid_token(secret_name),
                self._access.plaid_client(),
                start=start,
                end=end,
                subject=slug,
            )
            return normalize_plaid_transactions(raw, user_email=email, institution_slug=slug)

        return Source("plaid", slug, institution_display_name(slug), fetch)

    def _snaptrade_sources(self) -> list[Source]:
        secret = self._access.snaptrade_user_secret()
        if secret is None:
            return []
        return [self._snaptrade_source(secret, a) for a in self._snaptrade_accounts()]

    def _snaptrade_source(self, secret: str, account: dict[str, Any]) -> Source:
        email = self._access.user_email

        def fetch(start: date, end: date) -> list[NormalizedActivity]:
            raw = fetch_snaptrade_activities(
                self._access.snaptrade_client(),
                email,
                secret,
                str(account["id"]),
                start=start,
                end=end,
            )
            return normalize_snaptrade_activities(raw, user_email=email, account=account)

        institution = str(account.get("institution_name") or "Unknown")
        return Source("snaptrade", str(account["id"]), institution, fetch)
