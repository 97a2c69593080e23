"""Telling a database outage from a bug: the one place SQLAlchemy's connection errors are read.

Every entry point (web, MCP, CLI) asks :func:`database_outage` about an exception it did
not expect; an outage becomes :class:`~core.errors.DatabaseUnavailable` (a 503 with a retry
hint, a short tool error, one CLI line) instead of an internal error. Nothing has to be reset
when the database comes back: a connection that failed is dropped from the pool, and on
Postgres every checkout is pinged first (``pool_pre_ping``), so the next request reconnects.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from core.errors import DatabaseUnavailable

# SQLite's OperationalError also means "the schema is not there": that is no outage.
_SQLITE_SCHEMA_PROBLEMS = ("no such table", "no such column", "no such index")


def database_outage(error: BaseException) -> DatabaseUnavailable | None:
    """A :class:`DatabaseUnavailable` when ``error`` (or what caused it) is an outage."""
    current: BaseException | None = error
    for _ in range(4):  # the error itself and a few causes; enough for any wrapping we do
        if current is None:
            return None
        if _is_outage(current):
            return DatabaseUnavailable()
        current = current.__cause__
    return None


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.InterfaceError | sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True  # a dead connection, a refused reconnect, a pool with none to spare
    if isinstance(error, sa_exc.OperationalError):
        text = str(error.orig).lower() if error.orig is not None else ""
        return not text.startswith(_SQLITE_SCHEMA_PROBLEMS)
    return False
