"""The one row of ``fx_state``: read it, make sure it exists, and write to the table under
one lock across every process and host."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.clock import as_utc
from services.models import FxState
from services.single_flight import advisory_key

STATE_ID = 1
WRITE_LOCK = "fx-rates:write"


@dataclass(frozen=True)
class StateRow:
    version: int
    seeded_from: date | None
    newest_rate_date: date | None
    last_refresh_attempt_at: datetime | None
    last_refresh_at: datetime | None
    last_refresh_error: str | None

    def seeded_since(self, since: date) -> bool:
        return self.seeded_from is not None and self.seeded_from <= since

    def to_dict(self) -> dict[str, Any]:
        def iso(value: date | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "version": self.version,
            "seeded_from": iso(self.seeded_from),
            "newest_rate_date": iso(self.newest_rate_date),
            "last_refresh_attempt_at": iso(self.last_refresh_attempt_at),
            "last_refresh_at": iso(self.last_refresh_at),
            "last_refresh_error": self.last_refresh_error,
        }


EMPTY = StateRow(0, None, None, None, None, None)


def read_state(conn: Connection) -> StateRow:
    row = conn.execute(
        select(
            FxState.version,
            FxState.seeded_from,
            FxState.newest_rate_date,
            FxState.last_refresh_attempt_at,
            FxState.last_refresh_at,
            FxState.last_refresh_error,
        ).where(FxState.id == STATE_ID)
    ).first()
    if row is None:
        return EMPTY
    return StateRow(
        version=int(row.version or 0),
        seeded_from=row.seeded_from,
        newest_rate_date=row.newest_rate_date,
        last_refresh_attempt_at=as_utc(row.last_refresh_attempt_at),
        last_refresh_at=as_utc(row.last_refresh_at),
        last_refresh_error=row.last_refresh_error,
    )


def ensure_state_row(conn: Connection) -> None:
    """Insert the state row unless it is there (the migration makes it; this is belt and
    braces). On SQLite this write is the transaction's first statement, so it takes the
    database's write lock at once (waiting for another writer) before anything is read."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(FxState)
        .values(id=STATE_ID, version=0)
        .on_conflict_do_nothing(index_elements=[FxState.id])
    )


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One transaction that writes rates, one at a time on every host: an advisory lock on
    Postgres, the write lock on SQLite (taken by its first statement)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(advisory_key(WRITE_LOCK))))
        ensure_state_row(conn)
        yield conn
