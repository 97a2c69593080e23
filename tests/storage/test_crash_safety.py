"""kill -9 at the worst moments, on Postgres: the cache keeps its old rows; a migration resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.migration.runs import LEASE, MigrationInProgress
from settings import PROJECT_ROOT

pytestmark = pytest.mark.postgres

# The app's position cache (same database and user) refreshing Plaid with a row
# writer that stops, until it is killed, after the old rows are deleted and before
# the new ones go in.
REFRESH_CHILD = """
import threading
from services.composition import build_services
from services.positions.fetchers import ProviderFetch
from services.positions.service import PositionService
from services.positions.store import PositionRowWriter, positions_from_rows

class StopBeforeInsert(PositionRowWriter):
    def insert_rows(self, conn, rows):
        print("between delete and insert", flush=True)
        threading.Event().wait()  # until killed

services = build_services()
cached = [r for r in services.positions.get_cached_positions() if r["provider"] == "plaid"]
positions = PositionService(
    engine=services.engine,
    user_email=services.user_email,
    fetchers={"plaid": lambda *, automatic: ProviderFetch(positions_from_rows(cached))},
    clock=services.clock,
    row_writer=StopBeforeInsert(),
)
positions.refresh_provider_positions("plaid")
"""

MIGRATION_CHILD = """
import sys, threading
from services.composition import build_services

services = build_services()
store = services.secret_store

def stop_here(*args, **kwargs):
    print("between removal and secret deletion", flush=True)
    threading.Event().wait()  # until killed

store.schedule_deletion = stop_here
services.migrations.migrate("interactive-brokers", execute=True)
"""


def child_env(tmp_path: Path, database_url: str, emulator: Any) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
    }


def run_until_then_kill(script: str, env: dict[str, str], marker: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == marker, (line, child.stderr.read() if child.poll() else "")
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()


def plaid_rows(services: Any) -> list[tuple]:
    return sorted(
        (p["institution"], p["account_id"], p["ticker"] or "", p["quantity"], p["market_value"])
        for p in services.positions.get_cached_positions()
        if p["provider"] == "plaid"
    )


def test_kill_9_between_delete_and_insert_leaves_the_complete_old_rows(
    tmp_path: Path, postgres_url: str, emulator: Any, clock: Any
) -> None:
    from tests.conftest import make_services

    services = make_services(tmp_path, postgres_url, emulator, clock)
    services.positions.get_all_positions()
    before = plaid_rows(services)
    assert len(before) > 10
    run_until_then_kill(
        REFRESH_CHILD, child_env(tmp_path, postgres_url, emulator), "between delete and insert"
    )
    assert plaid_rows(services) == before
    # and the cache still works: a refresh after the crash replaces the rows normally
    assert services.positions.refresh_provider_positions("plaid") == len(before)


def test_kill_9_between_plaid_removal_and_secret_deletion_then_a_rerun_completes(
    tmp_path: Path, postgres_url: str, emulator: Any, clock: Any
) -> None:
    from core.secret_names import plaid_token_name
    from sandbox import demo
    from tests.conftest import make_services

    services = make_services(tmp_path, postgres_url, emulator, clock)
    services.positions.get_all_positions()
    secret = plaid_token_name(services.user_email, "interactive-brokers")
    run_until_then_kill(
        MIGRATION_CHILD,
        child_env(tmp_path, postgres_url, emulator),
        "between removal and secret deletion",
    )
    assert emulator.controls.calls("plaid /item/remove") == 1
    assert services.secret_store.get(secret) == demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
    # The killed run's lease (taken on the child's real clock) has not lapsed yet: from
    # outside, a run that stopped looks like one still running, and is left alone.
    clock.now = datetime.now(UTC)
    with pytest.raises(MigrationInProgress):
        services.migrations.migrate("interactive-brokers", execute=True)
    clock.now = datetime.now(UTC) + LEASE + timedelta(seconds=1)
    report = services.migrations.migrate("interactive-brokers", execute=True)
    assert report["status"] == "completed", report
    # The report goes on from the killed run's steps: its gates, then the resume.
    steps = [step["step"] for step in report["steps"]]
    assert steps[0] == "gate" and "resume" in steps
    assert not services.secret_store.exists(secret)
    assert services.secret_store.list_scheduled(f"plaid/access_token/{services.user_email}/") == [
        secret
    ]
