"""Where cached positions live: the ``positions`` rows and each provider's ``position_snapshots``
row (when its rows were fetched, the last failure, and a generation every attempt moves).

A refresh replaces a provider's rows in ONE transaction, so readers see the old rows
or the new ones, never a mix or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, or_, select, update

from core.normalized import POSITION_FIELDS, NormalizedPosition
from services.clock import Clock, as_utc
from services.models import PositionRow, PositionSnapshot
from services.positions.fetchers import ProviderFetch
from services.storage import ensure_user, user_id_for

_ROW_COLUMNS = [c for c in PositionRow.__table__.c if c.name not in ("id", "user_id")]
# Built once: every warm read runs it, and building it each time would cost more than running it.
_SNAPSHOTS_OF_USER = select(
    PositionSnapshot.provider,
    PositionSnapshot.fetched_at,
    PositionSnapshot.last_attempt_at,
    PositionSnapshot.last_error,
    PositionSnapshot.generation,
).where(PositionSnapshot.user_id == bindparam("user_id"))


class PositionRowWriter:
    """Replaces a provider's rows: the old ones are deleted, then the new ones inserted.

    :class:`PositionService` runs both steps in the connection of ONE transaction,
    so a failure between them (or in either) leaves the old rows in place.
    """

    def delete_rows(self, conn: Connection, *condition: Any) -> None:
        conn.execute(delete(PositionRow).where(*condition))

    def insert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(PositionRow), rows)


@dataclass(frozen=True)
class Snapshot:
    fetched_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    generation: int


EMPTY_SNAPSHOT = Snapshot(None, None, None, 0)


class PositionStore:
    """One person's cached positions and their cache state."""

    def __init__(
        self,
        engine: Engine,
        user_email: str,
        clock: Clock,
        row_writer: PositionRowWriter | None = None,
    ) -> None:
        self._engine = engine
        self.user_email = user_email
        self._clock = clock
        self._row_writer = row_writer or PositionRowWriter()
        self._user_id: int | None = None

    def user_id(self) -> int:
        if self._user_id is None:
            ensure_user(self._engine, self.user_email, self._clock)
            self._user_id = user_id_for(self._engine, self.user_email)
        assert self._user_id is not None
        return self._user_id

    def snapshots(self, conn: Connection | None = None) -> dict[str, Snapshot]:
        """Each provider's cache state: the one small query a warm read makes (on ``conn``,
        when the caller reads more on the same connection)."""
        if conn is not None:
            return self._snapshots(conn)
        with self._engine.connect() as own:
            return self._snapshots(own)

    def connect(self) -> Connection:
        return self._engine.connect()

    def read_rows(self, providers: list[str]) -> dict[str, list[dict[str, Any]]]:
        with self._engine.connect() as conn:
            return self._rows(conn, providers)

    def read_consistent(
        self, providers: list[str]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Snapshot]]:
        """Rows and snapshots from one snapshot of the database, so the rows are exactly
        those of the generations returned (a refresh elsewhere cannot fall in between)."""
        options = {}
        if self._engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with self._engine.connect().execution_options(**options) as conn, conn.begin():
            return self._rows(conn, providers), self._snapshots(conn)

    def _snapshots(self, conn: Connection) -> dict[str, Snapshot]:
        return {
            provider: Snapshot(
                fetched_at=as_utc(fetched_at),
                last_attempt_at=as_utc(last_attempt_at),
                last_error=last_error,
                generation=generation or 0,
            )
            for provider, fetched_at, last_attempt_at, last_error, generation in conn.execute(
                _SNAPSHOTS_OF_USER, {"user_id": self.user_id()}
            )
        }

    def _rows(self, conn: Connection, providers: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not providers:
            return {}
        query = (
            select(*_ROW_COLUMNS)
            .where(PositionRow.user_id == self.user_id(), PositionRow.provider.in_(providers))
            .order_by(PositionRow.provider, PositionRow.institution, PositionRow.id)
        )
        result: dict[str, list[dict[str, Any]]] = {p: [] for p in providers}
        # The rows of a whole portfolio: plain tuples zipped with the column names cost
        # a fraction of SQLAlchemy's mapping rows.
        names = [column.name for column in _ROW_COLUMNS]
        naive_times = self._engine.dialect.name == "sqlite"
        for values in conn.execute(query):
            record = dict(zip(names, values, strict=True))
            record["user_email"] = self.user_email
            if naive_times:
                record["as_of"] = as_utc(record["as_of"])
                record["fetched_at"] = as_utc(record["fetched_at"])
            result[record["provider"]].append(record)
        return result

    def replace_rows(
        self,
        provider: str,
        fetch: ProviderFetch,
        fetched_at: datetime,
        *,
        warning: str | None = None,
        partial: bool = False,
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """Replace the provider's rows in ONE transaction (rows of failed sources are kept);
        ``also`` writes in that same transaction (the sources' own generations).

        ``partial``: only some sources were asked for (a webhook said they changed); the
        provider's fetch time stays, so the others' lifetime is not reset, but the
        generation moves, so every view is rebuilt."""
        user_id = self.user_id()
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
            self._row_writer.delete_rows(conn, *condition)
            self._row_writer.insert_rows(conn, rows)
            if partial:
                self._write_snapshot(
                    conn, user_id, provider, attempted_at=fetched_at, error=warning
                )
            else:
                self._write_snapshot(conn, user_id, provider, fetched_at=fetched_at, error=warning)
            if also is not None:
                also(conn)

    def record_attempt(self, provider: str, attempted_at: datetime, *, error: str) -> None:
        user_id = self.user_id()
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

    def drop_rows(self, provider: str, *, institution: str | None = None) -> int:
        """Remove one provider's rows (and its fetch time, so the next read fetches; the
        generation moves, so no process serves a view of the dropped rows).

        With ``institution``, only that institution's rows go: the others keep
        their last known rows.
        """
        user_id = self.user_id()
        condition = [PositionRow.user_id == user_id, PositionRow.provider == provider]
        if institution is not None:
            condition.append(PositionRow.institution == institution)
        with self._engine.begin() as conn:
            deleted = conn.execute(delete(PositionRow).where(*condition)).rowcount
            conn.execute(
                update(PositionSnapshot)
                .where(PositionSnapshot.user_id == user_id, PositionSnapshot.provider == provider)
                .values(fetched_at=None, generation=PositionSnapshot.generation + 1)
            )
        return int(deleted or 0)


def last_attempt_failed(snapshot: Snapshot) -> bool:
    """The newest attempt failed (a partial success keeps fetched_at == last_attempt_at)."""
    return (
        snapshot.last_error is not None
        and snapshot.last_attempt_at is not None
        and (snapshot.fetched_at is None or snapshot.last_attempt_at > snapshot.fetched_at)
    )


def positions_from_rows(rows: list[dict[str, Any]]) -> list[NormalizedPosition]:
    return [NormalizedPosition(**{k: row[k] for k in POSITION_FIELDS}) for row in rows]
