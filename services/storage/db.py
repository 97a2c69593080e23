"""Engine creation and schema upgrades. Nothing here connects at import time."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from settings import PROJECT_ROOT

log = logging.getLogger(__name__)

POSTGRES_CONNECT_TIMEOUT_SECONDS = 10


def utc_now() -> datetime:
    return datetime.now(UTC)


def database_url_object(database_url: str) -> URL:
    """Parse a URL; plain ``postgresql://`` means psycopg2, the driver we ship.

    (SQLAlchemy 2.1 would otherwise pick psycopg 3, which is not installed.)
    """
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    return url


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    url = database_url_object(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            private_sqlite_file(Path(url.database))
        # No pre-ping: a SQLite file cannot drop a connection, and the ping would cost
        # every read a second statement.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite opens transactions lazily and behind our back; let SQLAlchemy
        # issue BEGIN itself so a transaction covers exactly what we asked.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    # Every checkout is pinged first, and a connection that failed is dropped from the
    # pool: after an outage the next request reconnects, nothing has to be restarted.
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}
    if "connect_timeout" not in url.query:
        # An unreachable server answers a page with a 503 in seconds, not minutes.
        options["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
    return create_engine(url, **{**options, **kwargs})


# SQLite's journals beside the database file; they hold the same rows.
SQLITE_JOURNAL_SUFFIXES = ("-wal", "-shm", "-journal")


def private_sqlite_file(path: Path) -> None:
    """Make the database file before SQLite does: mode 0600, in a folder made 0700.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's own permissions, so
    they are 0600 too. A file (or journal) left readable by others by an older version
    is tightened; an existing folder is left as it is (it may be anybody's).
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    for file in (path, *(path.with_name(path.name + s) for s in SQLITE_JOURNAL_SUFFIXES)):
        _owner_only(file)


def _owner_only(path: Path) -> None:
    try:
        info = os.stat(path)
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(path, 0o600)
            log.info("tightened %s to mode 600", path.name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not make %s private: %s", path.name, exc.strerror)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def temporary_postgres_database(server_url: str, prefix: str = "bh_tmp") -> Iterator[str]:
    """A new empty database on the server at ``server_url``, dropped afterwards.

    For tests and benchmarks: each gets a database of its own on one server.
    """
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    admin_url = database_url_object(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@dataclass(frozen=True)
class SchemaState:
    """The database's migration revision(s) against the newest this code has."""

    current: tuple[str, ...]  # empty: no alembic_version table (or row), an empty database
    head: tuple[str, ...]
    known: bool = True  # False: the database has a revision this code does not have

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.head)

    def problem(self) -> str | None:
        """One line saying what is wrong and what to run; None when the schema is current."""
        if self.up_to_date:
            return None
        newest = ", ".join(self.head)
        if not self.known:
            return (
                f"the database schema is at revision {', '.join(self.current)}, which this code "
                f"does not know (newest {newest}): run the newer code against it"
            )
        current = ", ".join(self.current) or "none: the database is empty"
        return (
            f"the database schema is behind (revision {current}, newest {newest}): "
            "run `flask --app app migrate`"
        )


def schema_state(engine: Engine) -> SchemaState:
    """The database's Alembic revision against the newest migration (reads, changes nothing)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(
        alembic_config(engine.url.render_as_string(hide_password=False))
    )
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    known = True
    for revision in current:
        try:
            known = known and script.get_revision(revision) is not None
        except CommandError:
            known = False
    return SchemaState(tuple(sorted(current)), tuple(sorted(script.get_heads())), known)
