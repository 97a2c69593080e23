"""Stored migration runs (``migration_runs``): one row per run, with its whole report.

One run at a time per institution, whoever starts it (CLI, MCP, a browser tab) and on
whichever host: a partial UNIQUE index over the active states refuses a second one,
and the run holds a lease renewed at every step. A run whose process stopped is
recognised by its lapsed lease: unfinished checks are closed as ``abandoned``
(nothing was changed), and a run past the gates is taken over and completed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, NotFound
from core.untrusted import quoted_name
from services.clock import Clock
from services.migration.report import MigrationReport
from services.models import MigrationRun
from services.models.migration import ACTIVE_STATUSES
from services.storage import ensure_user, user_id_for

# A run in one of these states has touched (or is touching) the provider.
PAST_THE_GATES = ("executing", "removed", "completed")
# How long a run is held without a sign of life: a heartbeat renews it while the run
# goes on (a step's provider calls may take longer), every quarter of it.
LEASE = timedelta(seconds=60)
HEARTBEAT_SECONDS = LEASE.total_seconds() / 4


class MigrationInProgress(Conflict):
    """Another run of this institution holds it; ``run_id`` says which."""

    def __init__(self, run_id: int, institution: str) -> None:
        super().__init__(
            f"{quoted_name(institution)} is already being moved (run {run_id}): follow that "
            "run rather than starting another"
        )
        self.run_id = run_id


class MigrationRuns:
    def __init__(self, engine: Engine, user_email: str, clock: Clock) -> None:
        self._engine = engine
        self._user_email = user_email
        self._clock = clock

    def _user_id(self) -> int:
        ensure_user(self._engine, self._user_email, self._clock)
        user_id = user_id_for(self._engine, self._user_email)
        assert user_id is not None
        return user_id

    def latest_past_the_gates(self, slug: str, source: str, target: str) -> dict[str, Any] | None:
        """The newest run of this move that executed, or is executing, if any."""
        table = MigrationRun.__table__
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(table)
                    .where(
                        table.c.user_id == self._user_id(),
                        table.c.institution_slug == slug,
                        table.c.source_provider == source,
                        table.c.target_provider == target,
                        table.c.status.in_(PAST_THE_GATES),
                    )
                    .order_by(table.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def open(self, report: MigrationReport) -> int:
        """Store a new run holding its institution; MigrationInProgress if one is active."""
        for _ in range(2):
            try:
                return self._insert(report)
            except IntegrityError:
                active = self.active(report.institution_slug)
                if active is None:
                    continue  # it ended in between: try once more
                if not self.close_abandoned_checks(active["id"]):
                    raise MigrationInProgress(active["id"], report.institution) from None
        raise MigrationInProgress(0, report.institution)

    def _insert(self, report: MigrationReport) -> int:
        now = self._clock()
        with self._engine.begin() as conn:
            result = conn.execute(
                insert(MigrationRun).values(
                    user_id=self._user_id(),
                    institution_slug=report.institution_slug,
                    source_provider=report.source,
                    target_provider=report.target,
                    status="running",
                    executed=report.execute,
                    report=json.dumps(report.to_dict(), default=str),
                    created_at=now,
                    updated_at=now,
                    lease_until=now + LEASE,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def close_abandoned_checks(self, run_id: int) -> bool:
        """Checks whose process stopped (lease lapsed) changed nothing: close them."""
        now = self._clock()
        with self._engine.begin() as conn:
            closed = conn.execute(
                update(MigrationRun)
                .where(
                    MigrationRun.id == run_id,
                    MigrationRun.status == "running",
                    MigrationRun.lease_until <= now,
                )
                .values(status="abandoned", lease_until=None, updated_at=now)
            ).rowcount
        return closed == 1

    def take_over(self, run_id: int) -> bool:
        """Hold an interrupted run past the gates to complete it: True for one caller only,
        and only once its last holder's lease has lapsed."""
        now = self._clock()
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(MigrationRun)
                .where(
                    MigrationRun.id == run_id,
                    MigrationRun.status.in_(("executing", "removed")),
                    or_(MigrationRun.lease_until.is_(None), MigrationRun.lease_until <= now),
                )
                .values(lease_until=now + LEASE, updated_at=now)
            ).rowcount
        return taken == 1

    @contextmanager
    def held(self, run_id: int | None) -> Iterator[None]:
        """Keep the run's lease alive while the block runs; if the block is left by an
        exception (the process is stopping, or a bug), give the lease up at once, so the
        run can be closed or completed without waiting for it to lapse."""
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                self._set_lease(run_id, self._clock() + LEASE)

        beating = threading.Thread(target=heartbeat, name="migration-heartbeat", daemon=True)
        beating.start()
        try:
            yield
        except BaseException:
            self._set_lease(run_id, self._clock())
            raise
        finally:
            stop.set()
            beating.join()

    def _set_lease(self, run_id: int | None, until: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(MigrationRun)
                .where(MigrationRun.id == run_id, MigrationRun.status.in_(ACTIVE_STATUSES))
                .values(lease_until=until)
            )

    def touch(self, report: MigrationReport) -> None:
        """Record the steps so far (others watch them) and renew the lease."""
        if report.run_id is None:
            return
        now = self._clock()
        stored = {**report.to_dict(), "facts": report.facts}
        with self._engine.begin() as conn:
            conn.execute(
                update(MigrationRun)
                .where(MigrationRun.id == report.run_id)
                .values(
                    report=json.dumps(stored, default=str),
                    updated_at=now,
                    lease_until=now + LEASE,
                )
            )

    def save(self, report: MigrationReport, status: str) -> dict[str, Any]:
        report.status = status
        now = self._clock()
        stored = {**report.to_dict(), "facts": report.facts}
        with self._engine.begin() as conn:
            conn.execute(
                update(MigrationRun)
                .where(MigrationRun.id == report.run_id)
                .values(
                    status=status,
                    report=json.dumps(stored, default=str),
                    updated_at=now,
                    lease_until=now + LEASE if status in ACTIVE_STATUSES else None,
                )
            )
        return report.to_dict()

    def active(self, slug: str) -> dict[str, Any] | None:
        """The run holding ``slug`` now, if any (it may have stopped: see ``lease_until``)."""
        return self._first(
            MigrationRun.institution_slug == slug, MigrationRun.status.in_(ACTIVE_STATUSES)
        )

    def get(self, run_id: int) -> dict[str, Any]:
        # Beyond the id column's range is no run (and no question for the database).
        found = self._first(MigrationRun.id == run_id) if 0 < run_id < 2**31 else None
        if found is None:
            raise NotFound(f"no migration run {run_id}")
        return found

    def stalled(self, run: dict[str, Any]) -> bool:
        """An active run whose holder stopped renewing its lease."""
        lease = run.get("lease_until")
        if run["status"] not in ACTIVE_STATUSES or lease is None:
            return run["status"] in ACTIVE_STATUSES
        if lease.tzinfo is None:
            lease = lease.replace(tzinfo=self._clock().tzinfo)
        return bool(lease <= self._clock())

    def _first(self, *conditions: Any) -> dict[str, Any] | None:
        table = MigrationRun.__table__
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(table)
                    .where(table.c.user_id == self._user_id(), *conditions)
                    .order_by(table.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return {**dict(row), "report": json.loads(row["report"])} if row else None

    def recent(self, limit: int = 20, slug: str | None = None) -> list[dict[str, Any]]:
        table = MigrationRun.__table__
        query = select(table).where(table.c.user_id == self._user_id())
        if slug is not None:
            query = query.where(table.c.institution_slug == slug)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit)).mappings().all()
        return [{**dict(r), "report": json.loads(r["report"])} for r in rows]
