"""Stored migration runs (``migration_runs``): one row per run, with its whole report."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, insert, select, update

from services.clock import Clock
from services.migration.report import MigrationReport
from services.models import MigrationRun
from services.users import ensure_user, user_id_for

# A run in one of these states has touched (or is touching) the provider.
PAST_THE_GATES = ("executing", "removed", "completed")


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

    def create(self, report: MigrationReport) -> int:
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
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def save(self, report: MigrationReport, status: str) -> dict[str, Any]:
        report.status = status
        stored = {**report.to_dict(), "facts": report.facts}
        with self._engine.begin() as conn:
            conn.execute(
                update(MigrationRun)
                .where(MigrationRun.id == report.run_id)
                .values(
                    status=status, report=json.dumps(stored, default=str), updated_at=self._clock()
                )
            )
        return report.to_dict()

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        table = MigrationRun.__table__
        with self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(table)
                    .where(table.c.user_id == self._user_id())
                    .order_by(table.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [{**dict(r), "report": json.loads(r["report"])} for r in rows]
