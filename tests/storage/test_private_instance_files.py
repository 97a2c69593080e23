"""Every file of the embedded default is its owner's only: 0600 files in a 0700 folder.

The SQLite database holds positions and trades, its ``-wal``/``-shm`` journals hold the
same rows, ``secrets.json`` the tokens, ``secret_key`` what signs the cookies, and the
emulator's files the demo's state. Checked with a umask of 022, which would otherwise
give 0644 files in a 0755 folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.storage.db import make_engine
from tests.conftest import FakeClock, make_settings
from tests.web_fixtures import logged_in_client, post


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_database_and_its_journals_are_created_0600_in_a_0700_folder(tmp_path: Path) -> None:
    database = tmp_path / "new" / "instance" / "hub.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:  # WAL mode: the write leaves -wal and -shm beside the file
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES ('a position')"))
    reader = engine.connect()  # an open connection keeps the journals in place
    try:
        journals = [database.with_name(database.name + s) for s in ("-wal", "-shm")]
        assert all(path.exists() for path in journals)
        assert mode(database.parent) == 0o700
        assert {path.name: mode(path) for path in (database, *journals)} == {
            "hub.db": 0o600,
            "hub.db-wal": 0o600,
            "hub.db-shm": 0o600,
        }
    finally:
        reader.close()
        engine.dispose()


def test_a_database_left_readable_by_others_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    for name in ("hub.db", "hub.db-wal", "hub.db-shm"):
        (tmp_path / name).touch()
        (tmp_path / name).chmod(0o644)

    make_engine(f"sqlite:///{database}").dispose()

    assert {name: mode(tmp_path / name) for name in ("hub.db", "hub.db-wal", "hub.db-shm")} == {
        "hub.db": 0o600,
        "hub.db-wal": 0o600,
        "hub.db-shm": 0o600,
    }


def test_an_existing_secret_folder_open_to_others_is_closed(tmp_path: Path) -> None:
    from providers.secret_stores import LocalSecretStore

    folder = tmp_path / "instance"
    folder.mkdir(mode=0o755)
    LocalSecretStore(folder / "secrets.json").exists("app/anything")

    assert mode(folder) == 0o700


def test_every_file_the_embedded_default_makes_is_private(tmp_path: Path) -> None:
    """The demo as `make run` runs it: the emulator started by the app, SQLite, local secrets."""
    from services.composition import build_services

    instance = tmp_path / "instance"
    settings = make_settings(tmp_path, "")  # no DATABASE_URL: SQLite in INSTANCE_DIR
    assert settings.database_url.startswith("sqlite:///") and str(instance) in settings.database_url
    hub: Any = build_services(settings, clock=FakeClock())  # starts the emulator itself
    try:
        client = logged_in_client(hub)  # secret_key, the password hash, a session row
        refreshed = post(
            client,
            "/positions/refresh",
            {"provider": "plaid"},
            headers={"Accept": "application/json"},
        )
        assert refreshed.status_code == 200
        files = {path.name: mode(path) for path in instance.iterdir()}
        expected = {
            "brokerage_hub.db",
            "brokerage_hub.db-wal",
            "brokerage_hub.db-shm",
            "secrets.json",
            "secret_key",
            "emulator.json",
            "emulator-state.json",
        }
        assert expected <= set(files), sorted(files)
        assert files == dict.fromkeys(files, 0o600), files  # the lock files too
        assert mode(instance) == 0o700
    finally:
        hub.close()
