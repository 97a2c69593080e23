"""The positions answer shared by the MCP tool, the JSON route, the CLI and the pages.

Views are computed once per cache generation. A warm read asks the database for
each provider's generation (one small query) and serves the view already built
for it; a refresh in any process moves the generation, so no process serves a
stale view. The view kept here is a derived copy, checked on every read.

A view also depends on the exchange rates (``services.fx``): it is kept per cache
generation *and* rates version, and the warm read checks both on one connection.

``full``, ``list`` and ``holdings`` answer in pages (``limit``, ``cursor``); ``summary``
is bounded by its shape, and ``by_account`` shows each account's largest positions
(``POSITIONS_PER_ACCOUNT``) with the count of the rest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date, datetime
from typing import Any, Protocol

from core.errors import BrokerageHubError, InvalidInput
from core.normalized import PROVIDERS
from services.connections import ConnectionRegistry, ConnectionState
from services.fx import Converter, RateSnapshot
from services.paging import PageSize, checked_limit, cursor_offset, generation_tag, page
from services.positions.cooldown import RequestedRefresh
from services.positions.formats import PortfolioView, iso
from services.positions.service import CacheState, PositionService

FORMATS = ("full", "summary", "by_account", "list", "holdings")
# What a page holds by default, and at most: the default fits an MCP client's answer
# limit (about 25,000 tokens) with room to spare; the maximum stays well inside it.
PAGE_SIZES = {
    "full": PageSize(default=50, maximum=100),
    "list": PageSize(default=200, maximum=500),
    "holdings": PageSize(default=50, maximum=100),
}
POSITIONS_PER_ACCOUNT = 10
VIEWS_KEPT = 4  # generations whose views stay in memory (a cursor's, the newest, ...)


def validate_positions_request(
    format: Any, refresh_provider: Any, limit: Any = None, cursor: Any = None
) -> int | None:
    """Reject bad arguments before anything can call a provider; returns the page size."""
    if not isinstance(format, str) or format not in FORMATS:
        raise InvalidInput(
            f"unknown format {str(format)[:40]!r}: allowed values are {', '.join(FORMATS)}",
            field="format",
        )
    if refresh_provider is not None and refresh_provider not in PROVIDERS:
        raise InvalidInput(
            f"unknown refresh_provider {str(refresh_provider)[:40]!r}: allowed values are "
            f"{', '.join(PROVIDERS)} or null",
            field="refresh_provider",
        )
    if format not in PAGE_SIZES:
        if limit is not None or cursor is not None:
            raise InvalidInput(
                f"limit and cursor page the {' and '.join(PAGE_SIZES)} formats; "
                f"{format} is answered whole",
                field="limit" if limit is not None else "cursor",
            )
        return None
    return checked_limit(limit, PAGE_SIZES[format], f"format {format}")


class Rates(Protocol):
    """The exchange rates a view is valued with (``services.fx.store.FxStore``)."""

    def snapshot(self, on: date, conn: Any = None) -> RateSnapshot: ...

    def version(self, conn: Any) -> int: ...

    def refresh_due(self) -> bool: ...

    def refresh(self) -> dict[str, Any]: ...


ViewKey = tuple[tuple[tuple[str, int], ...], int]


class PositionViews:
    """What ``get_positions`` answers, for the MCP tool, the JSON route, the CLI and the pages."""

    def __init__(
        self,
        positions: PositionService,
        connections: ConnectionRegistry,
        rates: Rates,
        base_currency: str,
    ) -> None:
        self.positions = positions
        self._connections = connections
        self._rates = rates
        self.base_currency = base_currency
        self._views: OrderedDict[ViewKey, PortfolioView] = OrderedDict()
        self._lock = threading.Lock()

    def answer(
        self,
        format: str = "full",
        refresh_provider: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        positions_per_account: int | None = POSITIONS_PER_ACCOUNT,
    ) -> dict[str, Any]:
        """The positions in ``format``, with cache_info; ``refresh_provider`` is fetched first.

        ``positions_per_account`` bounds ``by_account`` (None: every position, for a page
        that shows them all)."""
        page_size = validate_positions_request(format, refresh_provider, limit, cursor)
        if self._rates.refresh_due():
            # At most once a day across every process (the rest only note that it ran);
            # a failed download changes no rate and is reported by `refresh-rates`.
            self._rates.refresh()
        if refresh_provider is None:
            warm = self._warm(format, page_size, cursor, positions_per_account)
            if warm is not None:
                return warm
        refresh = self._refresh(refresh_provider) if refresh_provider is not None else None
        # The refreshed provider is now fresh; the other is fetched only if its own cache expired.
        state = self.positions.ensure_fresh()
        view, state, key = self._view(state)
        states = self._connections.list(self.positions.user_email)
        payload = self._payload(
            format, view, state, key, page_size, cursor, positions_per_account, states
        )
        if refresh is not None:
            payload["refresh"], payload["cache_info"][refresh_provider]["refresh"] = refresh
        return payload

    def answer_if_warm(
        self, format: str = "full", *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any] | None:
        """The answer, when it needs no provider call and its view is built; else None.

        What is left is two small queries and a few dictionaries, cheap enough for a
        caller to run without handing it to a worker thread."""
        page_size = validate_positions_request(format, None, limit, cursor)
        if self._rates.refresh_due():
            return None  # the day's rates download may be due: not for the event loop
        return self._warm(format, page_size, cursor, POSITIONS_PER_ACCOUNT)

    def _warm(
        self,
        format: str,
        page_size: int | None,
        cursor: str | None,
        positions_per_account: int | None,
    ) -> dict[str, Any] | None:
        # The cache state and the connection states on one connection: one pool checkout
        # (and one pre-ping on Postgres) for the whole read.
        with self.positions.connect() as conn:
            state, stale = self.positions.peek(conn)
            if stale:
                return None
            key = (state.generation_key, self._rates.version(conn))
            with self._lock:
                view = self._views.get(key)
            if view is None:
                return None
            states = self._connections.list(self.positions.user_email, conn=conn)
        return self._payload(
            format, view, state, key, page_size, cursor, positions_per_account, states
        )

    def _payload(
        self,
        format: str,
        view: PortfolioView,
        state: CacheState,
        key: ViewKey,
        page_size: int | None,
        cursor: str | None,
        positions_per_account: int | None,
        connection_states: list[ConnectionState],
    ) -> dict[str, Any]:
        # A cursor is cut from one generation under one rates version (holdings are
        # ordered by their value in the base currency).
        tag = generation_tag((*key[0], ("rates", key[1])))
        payload: dict[str, Any] = {"format": format}
        if format == "summary":
            payload["summary"] = view.summary()
        elif format == "by_account":
            payload["providers"] = view.by_account(positions_per_account)
            payload["totals"] = view.totals
        else:
            assert page_size is not None
            rows = {
                "full": lambda: view.positions,
                "list": view.list_rows,
                "holdings": view.holdings,
            }[format]()
            offset = cursor_offset(cursor, what=format, tag=tag)
            payload.update(page(rows, offset=offset, limit=page_size, what=format, tag=tag))
            payload["totals"] = view.totals
        payload["base_total"] = view.base_total
        payload["gains"] = view.gains
        payload["fx"] = view.fx
        payload["position_count"] = view.position_count
        payload["overlaps"] = view.overlaps
        payload["cache_info"] = cache_info(state.metadata)
        add_connection_states(payload["cache_info"], connection_states)
        return payload

    def _refresh(self, provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The answer's ``refresh`` and the provider's ``cache_info`` ``refresh`` entry."""
        error: str | None = None
        try:
            done = self.positions.refresh_on_request(provider)
        except ValueError as exc:
            error = str(exc)
        except BrokerageHubError as exc:
            error = exc.message
        info = done.info() if error is None else RequestedRefresh(False, "failed").info()
        return {"provider": provider, "ok": error is None, "error": error}, info

    def _view(self, state: CacheState) -> tuple[PortfolioView, CacheState, ViewKey]:
        """The view of the generation ``state`` names: kept, or built from its rows now."""
        with self.positions.connect() as conn:
            version = self._rates.version(conn)
        key = (state.generation_key, version)
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view, state, key
        rows, snapshots = self.positions.read_cached()
        read = self.positions.state_of(snapshots)
        if read.generation_key != state.generation_key:
            # A refresh elsewhere landed in between: serve the rows read, described as they are.
            state = read
        rates = self._rates.snapshot(valued_on(rows, self.positions.today()))
        view = PortfolioView(
            rows, self.positions.provider_priority, Converter(self.base_currency, rates)
        )
        key = (state.generation_key, rates.version)
        with self._lock:
            # Kept under the rates it was valued with (a refresh in between moves the version).
            self._views[key] = view
            while len(self._views) > VIEWS_KEPT:
                self._views.popitem(last=False)
        return view, state, key


def valued_on(rows: list[dict[str, Any]], today: date) -> date:
    """The date the positions are worth what they say: the newest of their as-of dates
    (or of when they were fetched); today when there are none."""
    dates = [
        moment.date()
        for row in rows
        for moment in (row.get("as_of") or row.get("fetched_at"),)
        if isinstance(moment, datetime)
    ]
    return max(dates, default=today)


def cache_info(metadata: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per provider: how old its rows are, when they refresh, and whether the last try failed.

    Every provider has the same keys; a disabled one has ``disabled: true``, nulls
    for what it never had, and a ``note`` saying so."""
    info: dict[str, Any] = {}
    for provider, meta in metadata.items():
        age = meta.get("cache_age_hours")
        info[provider] = {
            "environment": meta.get("environment"),
            "disabled": bool(meta.get("disabled")),
            "age_hours": round(age, 1) if age is not None else None,
            "ttl_hours": meta.get("ttl_hours"),
            "fresh_by": meta.get("fresh_by"),  # "webhook" | "lifetime"; None when disabled
            "due_sources": meta.get("due_sources", []),
            "from_cache": meta.get("from_cache"),
            "as_of": iso(meta.get("fetched_at")),
            "next_refresh_after": iso(meta.get("next_refresh_after")),
            "stale": bool(meta.get("stale")),
            "error": meta.get("error"),
            "warning": meta.get("warning"),
            "refresh": None,  # what a refresh asked for in the same call did
        }
        if meta.get("note"):
            info[provider]["note"] = meta["note"]
    return info


def add_connection_states(info: dict[str, Any], states: list[ConnectionState]) -> None:
    """Each provider's connections as last seen; one that needs the person says so in attention."""
    for provider, entry in info.items():
        # A disabled provider's connections are not shown: the person switched it off.
        mine = [s for s in states if s.provider == provider and not entry.get("disabled")]
        entry["connections"] = [
            {
                "id": state.external_id,
                "institution": state.institution_name,
                "type": state.connection_type,
                "status": state.status,
                "error": state.last_error,
            }
            for state in mine
        ]
        needs = [
            f"{state.institution_name or state.external_id}: {state.status}"
            + (f" ({state.last_error})" if state.last_error else "")
            for state in mine
            if state.needs_repair
        ]
        entry["attention"] = "; ".join(needs) or None
