"""What ``get_activities`` and ``get_income`` answer, for the MCP tools, the CLI and the pages.

A read first syncs what is due (a provider's lifetime passed, or never synced), one
provider at a time across every process, then answers from the database: a page of
activities (newest first) with each amount also in the base currency at its own date's
rate, or income sums for a period. Arguments are checked before anything is fetched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from core.errors import BrokerageHubError, Conflict
from services.activities.income import income_report, resolve_period
from services.activities.queries import (
    as_json,
    conditions,
    counted_once,
    read_page,
    read_rows,
)
from services.activities.requests import ActivityFilter, checked_filter
from services.activities.store import LISTED, ActivityStore, SyncState
from services.activities.sync import ActivitySyncer, due
from services.clock import Clock
from services.fx import RateHistory
from services.paging import cursor_fields, cursor_offset, generation_tag, page_fields

WHAT = "activities"
REPORTS_KEPT = 16  # income reports kept in memory: derived copies, checked on every read


class RateSource(Protocol):
    def history(self, currencies: Sequence[str], since: date, until: date) -> RateHistory: ...

    def version(self, conn: Any) -> int: ...


class ActivityViews:
    def __init__(
        self,
        store: ActivityStore,
        syncer: ActivitySyncer,
        rates: RateSource,
        *,
        base_currency: str,
        priority: Sequence[str],
        enabled: Callable[[], Sequence[str]],
        environments: dict[str, str],
        clock: Clock,
    ) -> None:
        self._store = store
        self._syncer = syncer
        self._rates = rates
        self.base_currency = base_currency
        self._priority = tuple(priority)
        self._enabled = enabled
        self._environments = environments
        self._clock = clock
        self._reports: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    # --- answers ---------------------------------------------------------------------------

    def activities(
        self,
        start_date: Any = None,
        end_date: Any = None,
        type: Any = None,
        account_id: Any = None,
        ticker: Any = None,
        limit: Any = None,
        cursor: Any = None,
        *,
        refresh: bool = False,
    ) -> dict[str, Any]:
        wanted, size = checked_filter(start_date, end_date, type, account_id, ticker, limit)
        cursor_fields(cursor, what=WHAT)  # a malformed cursor is refused before any sync
        syncs, sync_errors = self._fresh(refresh)
        tag = generation_tag(
            (*((f"{s.provider}:{s.source}", s.generation) for s in syncs), *wanted.key_tags())
        )
        offset = cursor_offset(
            cursor, what=WHAT, tag=tag, changed="activities or filters that have changed since"
        )
        overlaps = counted_once(syncs, self._priority, self._enabled())
        where = conditions(self._store.user_id(), wanted, overlaps, self._enabled())
        with self._store.engine.connect() as conn:
            total, rows = read_page(conn, where, offset=offset, limit=size)
        rates = self._history(rows)
        return {
            "activities": [self._with_base(row, rates) for row in rows],
            **page_fields(total, offset=offset, limit=size, what=WHAT, tag=tag),
            "filters": _filters(wanted),
            "base_currency": self.base_currency,
            "counted_once": overlaps,
            "cache_info": self.cache_info(syncs, sync_errors),
        }

    def income(
        self, period: Any = None, start_date: Any = None, end_date: Any = None
    ) -> dict[str, Any]:
        name, start, end = resolve_period(period, start_date, end_date, self._clock().date())
        syncs, sync_errors = self._fresh(False)
        overlaps = counted_once(syncs, self._priority, self._enabled())
        with self._store.engine.connect() as conn:
            # A report is kept per synced generation of every source and rates version: a
            # sync or a rates refresh in any process moves the key.
            key = (
                tuple((s.provider, s.source, s.generation) for s in syncs),
                tuple(self._enabled()),
                start,
                end,
                self._rates.version(conn),
            )
            with self._lock:
                report = self._reports.get(key)
            if report is None:
                wanted = ActivityFilter(
                    start, end, ("dividend", "interest", "fee", "tax", "buy", "sell"), None, None
                )
                where = conditions(self._store.user_id(), wanted, overlaps, self._enabled())
                rows = read_rows(conn, where)
                report = income_report(rows, self._history(rows), self.base_currency)
                with self._lock:
                    self._reports[key] = report
                    while len(self._reports) > REPORTS_KEPT:
                        self._reports.popitem(last=False)
        return {
            "period": {"name": name, "start": start.isoformat(), "end": end.isoformat()},
            **report,
            "counted_once": overlaps,
            "cache_info": self.cache_info(syncs, sync_errors),
        }

    def sync_due(self) -> dict[str, Any]:
        """Sync what is due (a webhook announced it, or a lifetime passed); for a scheduler."""
        _, errors = self._fresh(False)
        return {"ok": not errors, "errors": errors}

    def sync_now(self) -> dict[str, Any]:
        """Sync every enabled provider now, whatever their lifetimes (a person asked)."""
        _, errors = self._fresh(True)
        return {
            "ok": not errors,
            "errors": errors,
            "cache_info": self.cache_info(self._store.syncs(), errors),
        }

    # --- freshness -------------------------------------------------------------------------

    def _fresh(self, force: bool) -> tuple[list[SyncState], dict[str, str]]:
        syncs = self._store.syncs()
        now = self._clock()
        errors: dict[str, str] = {}
        synced = False
        for provider in self._enabled():
            if not force and not due(syncs, provider, self._syncer.ttl_hours[provider], now):
                continue
            try:
                report = self._syncer.sync(provider, force=force)
            except (Conflict, BrokerageHubError) as exc:
                errors[provider] = exc.message
                continue
            synced = True
            if report["errors"]:
                errors[provider] = "; ".join(f"{k}: {v}" for k, v in report["errors"].items())
        return (self._store.syncs() if synced else syncs), errors

    def cache_info(self, syncs: list[SyncState], errors: dict[str, str]) -> dict[str, Any]:
        now = self._clock()
        enabled = self._enabled()
        info: dict[str, Any] = {}
        for provider in self._syncer.ttl_hours:
            mine = [s for s in syncs if s.provider == provider and s.source != LISTED]
            successes = [s.last_success_at for s in mine if s.last_success_at is not None]
            oldest = min(successes, default=None)
            failed = [f"{s.institution}: {s.last_error}" for s in mine if s.last_error]
            ttl = self._syncer.ttl_hours[provider]
            info[provider] = {
                "environment": self._environments.get(provider),
                "disabled": provider not in enabled,
                "sources": len(mine),
                "synced_from": _iso(
                    min((s.synced_from for s in mine if s.synced_from), default=None)
                ),
                "as_of": _iso(oldest),
                "age_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
                "ttl_hours": ttl,
                "next_refresh_after": _iso(oldest + timedelta(hours=ttl)) if oldest else None,
                "stale": bool(failed or errors.get(provider)),
                "error": errors.get(provider) or ("; ".join(failed) or None),
            }
        return info

    # --- money -----------------------------------------------------------------------------

    def _history(self, rows: list[dict[str, Any]]) -> RateHistory:
        days = [row["trade_date"] for row in rows]
        if not days:
            return RateHistory({})
        currencies = {row["currency"] for row in rows} | {self.base_currency}
        return self._rates.history(sorted(currencies), min(days), max(days))

    def _with_base(self, row: dict[str, Any], rates: RateHistory) -> dict[str, Any]:
        out = as_json(row)
        amount, currency = row.get("amount"), row["currency"]
        if amount is None:
            return {**out, "amount_base": None, "rate": None}
        if currency == self.base_currency:
            return {**out, "amount_base": round(amount, 2), "rate": None}
        converted = rates.convert(amount, currency, self.base_currency, row["trade_date"])
        if converted is None:
            return {**out, "amount_base": None, "rate": "no rate"}
        value, source, target = converted
        return {
            **out,
            "amount_base": round(value, 2),
            "rate": {
                "pair": f"{currency}/{self.base_currency}",
                "rate": round(target.per_euro / source.per_euro, 8),
                "date": min(source.rate_date, target.rate_date).isoformat(),
                "source": source.source if source.source != "definition" else target.source,
            },
        }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _filters(wanted: ActivityFilter) -> dict[str, Any]:
    return {
        "start_date": _iso(wanted.start),
        "end_date": _iso(wanted.end),
        "type": list(wanted.types) or None,
        "account_id": wanted.account_id,
        "ticker": wanted.ticker,
    }
