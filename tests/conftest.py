"""Shared fixtures: an injected clock, the emulator over loopback, SQLite and Postgres databases.

Tests talk to the providers through the real SDKs and real HTTP against the
emulator in ``sandbox/``; time is injected (never slept); retries record their
waits instead of sleeping.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.retry_waits import RETRY_WAITS, record_retry_wait

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


class FakeClock:
    """An aware-UTC clock that only moves when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def timestamp(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def retry_sleeps() -> list[float]:
    """Retries record how long they would have waited; nothing sleeps."""
    RETRY_WAITS.clear()
    return RETRY_WAITS


@pytest.fixture(autouse=True)
def _fresh_redaction_registry() -> None:
    """Each test registers its own credentials, as a new process would: none is masked by luck."""
    from core.redaction import forget_registered_secrets

    forget_registered_secrets()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    """A fresh emulator (demo state) on a free loopback port, for one test."""
    from sandbox.server import start_emulator

    handle = start_emulator(port=0, state_path=tmp_path / "emulator-state.json")
    try:
        yield handle
    finally:
        handle.stop()


def _postgres_url_or_skip() -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    if IN_CI:
        pytest.fail("CI=true but TEST_DATABASE_URL is not set: Postgres tests must run in CI")
    pytest.skip("TEST_DATABASE_URL is not set (Postgres tests run in CI)")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty Postgres database for one test, dropped afterwards."""
    from services.storage.db import temporary_postgres_database

    with temporary_postgres_database(_postgres_url_or_skip(), "bh_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


def make_settings(tmp_path: Path, database_url: str, **overrides: str) -> Any:
    from settings import load_settings

    environ = {
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        **overrides,
    }
    return load_settings(environ, use_dotenv=False)


def run_now(work: Any) -> None:
    """A ``background`` that runs the work at once: a web-started move ends in its request."""
    work()


def make_services(
    tmp_path: Path,
    database_url: str,
    emulator: Any,
    clock: Any,
    *,
    background: Any = None,
    **env: str,
) -> Any:
    from services.composition import build_services
    from services.storage.db import make_engine, upgrade_schema

    settings = make_settings(tmp_path, database_url, **env)
    services = build_services(
        settings, clock=clock, emulator=emulator, sleep=record_retry_wait, background=background
    )
    upgrade_schema(make_engine(database_url))
    return services


@pytest.fixture
def services(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    """The whole service layer on SQLite, the local secret store and the emulator."""
    built = make_services(tmp_path, sqlite_url, emulator, clock)
    yield built
    assert secrets_in_database(built.engine) == []
    built.close()


@pytest.fixture
def any_db_services(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> Iterator[Any]:
    """The same, once on SQLite and once on Postgres."""
    built = make_services(tmp_path, database_url, emulator, clock)
    yield built
    assert secrets_in_database(built.engine) == []
    built.close()


# --- secrets never leak ------------------------------------------------------------------


def known_secret_values() -> list[str]:
    """Every credential the tests use: none may appear in a log line or a database table."""
    from sandbox import demo
    from tests.web_fixtures import TEST_PASSWORD

    return [
        *demo.PLAID_ACCESS_TOKENS.values(),
        demo.SNAPTRADE_USER_SECRET,
        demo.PLAID_SECRET,
        demo.SNAPTRADE_CONSUMER_KEY,
        TEST_PASSWORD,  # the web password every web test logs in with
    ]


def find_secrets(text: str) -> list[str]:
    return [value for value in known_secret_values() if value in text]


@pytest.fixture(autouse=True)
def no_secret_in_logs() -> Iterator[list[str]]:
    """Every test runs with DEBUG logging captured through the app's redacting filter."""
    import logging

    from core.redaction import RedactingFilter

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture(logging.DEBUG)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    leaked = find_secrets("\n".join(lines))
    assert not leaked, f"credentials appeared in log lines: {len(leaked)} value(s)"


def secrets_in_database(engine: Any) -> list[str]:
    """Scan every table's every text value for a known credential."""
    from sqlalchemy import MetaData, select

    metadata = MetaData()
    metadata.reflect(bind=engine)
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, str) and find_secrets(value):
                        found.append(table.name)
    return found


# --- a live app for the browser tests ----------------------------------------------------


@pytest.fixture
def live_demo_app(tmp_path: Path, sqlite_url: str, emulator: Any) -> Iterator[tuple[str, Any]]:
    """The app with the emulator's demo user, served on a free loopback port."""
    from werkzeug.serving import make_server

    from services.composition import system_clock
    from tests.browser_fixtures import free_port
    from tests.web_fixtures import TEST_PASSWORD, make_app

    port = free_port()
    hub = make_services(
        tmp_path, sqlite_url, emulator, system_clock, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}"
    )
    hub.web_auth.passwords.set_password(TEST_PASSWORD)
    server = make_server("127.0.0.1", port, make_app(hub, TESTING=False), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="page-actions-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        hub.close()
