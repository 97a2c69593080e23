"""Move an institution from Plaid to SnapTrade without losing data or leaving a billed Item.

Steps (each printed, each recorded in the run's report; the first failed gate stops):

1. GATE     SnapTrade's connection to the brokerage is enabled and returns data.
2. VERIFY   Holdings fetched fresh from both providers describe the same positions.
3. DRY RUN  Exactly one Plaid token secret matches the institution.
4. (without ``execute``: stop here and say what would happen, with the monthly saving)
5. EXECUTE  Remove the Plaid Item, then schedule its secret for deletion (7-day window).
6. RESYNC   Refresh the remaining Plaid Items' rows.
7. VERIFY   The institution is only under SnapTrade, the others only under Plaid, the
            remaining tokens are listed, and the totals equal the pre-migration totals
            with the institution counted once.

A run is stored before anything irreversible happens, so a run interrupted after
step 5 is completed by running the same command again; a run after success says
so and changes nothing. ``plan`` runs steps 1-4 only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from services.errors import BrokerageHubError, InvalidInput
from services.holdings_comparison import compare_holdings
from services.models import MigrationRun
from services.normalized import PROVIDERS, institution_display_name
from services.users import ensure_user, user_id_for

if TYPE_CHECKING:
    from services.composition import Services

log = logging.getLogger(__name__)

SUPPORTED_ROUTES = (("plaid", "snaptrade"),)
INSTITUTION_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_SLUG_LENGTH = 100  # migration_runs.institution_slug
TOTALS_TOLERANCE = 0.01  # currency units; the same positions priced the same way


@dataclass
class MigrationReport:
    institution_slug: str
    institution: str
    source: str
    target: str
    execute: bool
    status: str = "running"
    steps: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "completed", "already_completed")

    def step(self, name: str, ok: bool, summary: str, **detail: Any) -> bool:
        self.steps.append({"step": name, "ok": ok, "summary": summary, **detail})
        log.info("migration %s %s: %s", self.institution_slug, name, summary)
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "institution": self.institution,
            "institution_slug": self.institution_slug,
            "from": self.source,
            "to": self.target,
            "execute": self.execute,
            "status": self.status,
            "ok": self.ok,
            "steps": self.steps,
            **self.facts,
        }


def _validate(institution_slug: str, source: str, target: str, tolerance: float) -> None:
    if not isinstance(institution_slug, str) or not institution_slug.strip():
        raise InvalidInput("institution is required, e.g. interactive-brokers", field="institution")
    # The slug names the token secret and is stored with the run (at most 100 characters;
    # Postgres refuses longer values and NUL characters): check it before anything else.
    if len(institution_slug) > MAX_SLUG_LENGTH or not INSTITUTION_SLUG.fullmatch(institution_slug):
        shown = institution_slug if len(institution_slug) <= 60 else institution_slug[:60] + "..."
        raise InvalidInput(
            f"institution {shown!r} is not an institution slug: lowercase letters and digits "
            "joined by single hyphens, e.g. interactive-brokers",
            field="institution",
        )
    for name, value in (("from", source), ("to", target)):
        if value not in PROVIDERS:
            raise InvalidInput(
                f"--{name} {value!r} is not a provider: allowed values are {', '.join(PROVIDERS)}",
                field=name,
            )
    if (source, target) not in SUPPORTED_ROUTES:
        raise InvalidInput(
            f"moving from {source} to {target} is not supported: only plaid -> snaptrade",
            field="to",
        )
    if not (0 <= tolerance < 1):
        raise InvalidInput(
            f"tolerance {tolerance!r} is not valid: a relative tolerance from 0 to below 1",
            field="tolerance",
        )


class MigrationService:
    def __init__(self, services: Services) -> None:
        self._services = services

    # --- public ---------------------------------------------------------------------

    def plan(self, institution_slug: str, *, tolerance: float = 0.0001) -> dict[str, Any]:
        """Steps 1-4: everything a migration checks, changing nothing at any provider."""
        return self.migrate(institution_slug, execute=False, tolerance=tolerance)

    def migrate(
        self,
        institution_slug: str,
        *,
        source: str = "plaid",
        target: str = "snaptrade",
        execute: bool = False,
        tolerance: float = 0.0001,
        echo: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        if isinstance(institution_slug, str):
            institution_slug = institution_slug.strip().lower()
        _validate(institution_slug, source, target, tolerance)
        report = MigrationReport(
            institution_slug=institution_slug,
            institution=self._institution_name(institution_slug),
            source=source,
            target=target,
            execute=execute,
        )
        if echo is not None:
            original = report.step

            def echoing(name: str, ok: bool, summary: str, **detail: Any) -> bool:
                echo(f"[{'ok' if ok else 'STOP'}] {name}: {summary}")
                return original(name, ok, summary, **detail)

            report.step = echoing  # type: ignore[method-assign]
        previous = self._latest_run(institution_slug, source, target)
        if previous is not None and previous["status"] == "completed":
            report.status = "already_completed"
            report.facts = json.loads(previous["report"]).get("facts", {})
            report.step(
                "check",
                True,
                f"{report.institution} was already moved to {target} in run {previous['id']}; "
                "nothing was changed",
            )
            report.run_id = previous["id"]
            return report.to_dict()
        if previous is not None and previous["status"] in ("executing", "removed"):
            report.run_id = previous["id"]
            if not execute:
                report.step(
                    "check",
                    False,
                    f"run {previous['id']} stopped after removing the Plaid Item; "
                    "run again with --execute to complete it",
                )
                report.status = "interrupted"
                return report.to_dict()
            # An earlier run stopped after the irreversible step: finish it.
            report.facts = json.loads(previous["report"]).get("facts", {})
            report.step("resume", True, f"completing run {previous['id']} from step 5")
            return self._finish(report)
        report.run_id = self._create_run(report)
        try:
            if not self._check(report, tolerance):
                return self._save(report, "stopped")
            if not execute:
                saving = self._services.settings.plaid_item_monthly_usd
                report.facts["monthly_saving_usd"] = saving
                report.step(
                    "plan",
                    True,
                    f"would remove the Plaid Item for {report.institution} "
                    f"({report.facts['secret_name']}), schedule its token for deletion "
                    f"(restorable for 7 days) and resync; saves about ${saving:.2f} a month. "
                    "Run again with --execute to do it.",
                )
                return self._save(report, "planned")
            return self._finish(report)
        except BrokerageHubError as exc:
            report.step("error", False, exc.message)
            return self._save(report, "failed" if report.status == "running" else report.status)

    # --- steps 1-3 --------------------------------------------------------------------

    def _check(self, report: MigrationReport, tolerance: float) -> bool:
        services = self._services
        # 1. GATE
        rows = [
            row
            for row in self._snaptrade_health()
            if _same_institution(row["brokerage_name"], report.institution)
        ]
        healthy = [r for r in rows if not r["disabled"] and r["data_ok"]]
        if not rows or len(healthy) != len(rows):
            summary = (
                f"no SnapTrade connection to {report.institution}"
                if not rows
                else f"the SnapTrade connection to {report.institution} is not healthy"
            )
            return report.step("gate", False, summary, connections=rows)
        report.step(
            "gate",
            True,
            f"SnapTrade connection to {report.institution} is healthy",
            connections=rows,
        )
        # 3 (needed by 2): which token secret is it?
        from plaid_loader import get_plaid_token, load_plaid_positions

        try:
            dry = self._remove_plaid_institution(report.institution_slug, dry_run=True)
        except BrokerageHubError as exc:
            return report.step("dry_run", False, exc.message)
        report.facts["secret_name"] = dry["secret_name"]
        # 2. VERIFY: both sides fetched fresh, compared, nothing cached or changed.
        from snaptrade_loader import load_snaptrade_positions

        plaid_rows = [
            p.to_dict()
            for p in load_plaid_positions(
                get_plaid_token(dry["secret_name"], store=services.secret_store),
                services.plaid_client(),
                user_email=services.user_email,
                institution_slug=report.institution_slug,
            )
        ]
        snap_rows = [
            p.to_dict()
            for p in load_snaptrade_positions(
                services.user_email, services.snaptrade_client(), user_secret=self._user_secret()
            )
            if _same_institution(p.institution, report.institution)
        ]
        comparison = compare_holdings(
            plaid_rows,
            snap_rows,
            source_name=report.source,
            target_name=report.target,
            tolerance=tolerance,
        )
        if not report.step(
            "verify_holdings",
            comparison.matches,
            "holdings match"
            if comparison.matches
            else f"{len(comparison.differences)} difference(s): "
            + "; ".join(comparison.differences),
            comparison=comparison.to_dict(),
        ):
            return False
        report.step("dry_run", True, f"exactly one Plaid token matches: {dry['secret_name']}")
        # What the person sees now, counting the institution once: the yardstick for step 7.
        from services.position_views import get_positions_view

        before = get_positions_view(services.positions, "summary")
        report.facts["totals_before"] = before["summary"]["totals"]
        report.facts["plaid_tokens_before"] = self._plaid_tokens()
        return True

    # --- steps 5-7 --------------------------------------------------------------------

    def _finish(self, report: MigrationReport) -> dict[str, Any]:
        services = self._services
        secret_name = report.facts["secret_name"]
        self._save(report, "executing")
        # 5. EXECUTE (Plaid first, then the secret: see remove_plaid_institution)
        if services.secret_store.exists(secret_name):
            try:
                result = self._remove_plaid_institution(report.institution_slug, dry_run=False)
            except BrokerageHubError as exc:
                report.step("execute", False, f"nothing was deleted: {exc.message}")
                return self._save(report, "failed")
            report.step(
                "execute",
                True,
                f"Plaid Item removed; {secret_name} scheduled for deletion (restorable 7 days)",
                result=result,
            )
        else:
            report.step("execute", True, f"{secret_name} was already scheduled for deletion")
        services.connections.record(
            services.user_email,
            "plaid",
            report.institution_slug,
            status="removed",
            institution_name=report.institution,
            institution_slug=report.institution_slug,
        )
        self._save(report, "removed")
        # 6. RESYNC
        self._resync(report)
        # 7. VERIFY
        ok = self._verify_after(report)
        return self._save(report, "completed" if ok else "failed")

    def _resync(self, report: MigrationReport) -> None:
        positions = self._services.positions
        try:
            count = positions.refresh_provider_positions("plaid")
            report.step("resync", True, f"Plaid rows replaced ({count} rows)")
            return
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
        # Fallback: drop the moved institution's Plaid rows (so it is not counted twice)
        # and keep the other institutions' last rows rather than losing them.
        removed = positions.delete_provider_positions("plaid", institution=report.institution)
        detail = f"refresh failed ({message}); removed {removed} {report.institution} rows"
        if self._plaid_tokens():
            try:
                positions.refresh_provider_positions("plaid")
                detail += "; refreshed again"
            except (BrokerageHubError, ValueError) as exc:
                again = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
                detail += f"; second refresh failed too ({again}), last rows kept"
        report.step("resync", True, detail)

    def _verify_after(self, report: MigrationReport) -> bool:
        from services.position_views import get_positions_view

        services = self._services
        view = get_positions_view(services.positions, "full")
        rows = view["positions"]
        under = {
            provider: {p["institution"] for p in rows if p["provider"] == provider}
            for provider in PROVIDERS
        }
        problems = []
        if report.institution in under[report.source]:
            problems.append(f"{report.institution} still appears under {report.source}")
        if report.institution not in under[report.target]:
            problems.append(f"{report.institution} does not appear under {report.target}")
        remaining = sorted(
            set(report.facts.get("plaid_tokens_before", [])) - {report.facts["secret_name"]}
        )
        tokens_now = self._plaid_tokens()
        if tokens_now != remaining:
            problems.append(f"Plaid tokens are {tokens_now}, expected {remaining}")
        before = report.facts.get("totals_before", {})
        after = view["totals"]
        for currency in sorted(set(before) | set(after)):
            if abs(before.get(currency, 0.0) - after.get(currency, 0.0)) > TOTALS_TOLERANCE:
                problems.append(
                    f"{currency} total {after.get(currency, 0.0):,.2f} differs from "
                    f"{before.get(currency, 0.0):,.2f} before the move"
                )
        report.facts["totals_after"] = after
        report.facts["plaid_tokens_after"] = tokens_now
        return report.step(
            "verify_after",
            not problems,
            "; ".join(problems)
            or f"{report.institution} only under {report.target}; totals unchanged",
        )

    # --- helpers ----------------------------------------------------------------------

    def _remove_plaid_institution(self, slug: str, *, dry_run: bool) -> dict[str, Any]:
        from plaid_loader import remove_plaid_institution

        services = self._services
        return remove_plaid_institution(
            services.user_email,
            slug,
            services.settings.aws_region,
            services.plaid_client(),
            dry_run=dry_run,
            store=services.secret_store,
        )

    def _snaptrade_health(self) -> list[dict[str, Any]]:
        from snaptrade_loader import check_snaptrade_connection_health

        services = self._services
        return check_snaptrade_connection_health(
            services.user_email, services.snaptrade_client(), user_secret=self._user_secret()
        )

    def _user_secret(self) -> str:
        from services.secret_store import snaptrade_user_secret_name

        return self._services.secret_store.get(
            snaptrade_user_secret_name(self._services.user_email)
        )

    def _plaid_tokens(self) -> list[str]:
        from plaid_loader import list_user_tokens

        return list_user_tokens(self._services.user_email, store=self._services.secret_store)

    def _institution_name(self, slug: str) -> str:
        for state in self._services.connections.list(self._services.user_email):
            if state.institution_slug == slug and state.institution_name:
                return state.institution_name
        return institution_display_name(slug)

    def _user_id(self) -> int:
        engine = self._services.engine
        ensure_user(engine, self._services.user_email, self._services.clock)
        user_id = user_id_for(engine, self._services.user_email)
        assert user_id is not None
        return user_id

    def _latest_run(self, slug: str, source: str, target: str) -> dict[str, Any] | None:
        table = MigrationRun.__table__
        with self._services.engine.connect() as conn:
            row = (
                conn.execute(
                    select(table)
                    .where(
                        table.c.user_id == self._user_id(),
                        table.c.institution_slug == slug,
                        table.c.source_provider == source,
                        table.c.target_provider == target,
                        table.c.status.in_(("executing", "removed", "completed")),
                    )
                    .order_by(table.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def _create_run(self, report: MigrationReport) -> int:
        now = self._services.clock()
        with self._services.engine.begin() as conn:
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

    def _save(self, report: MigrationReport, status: str) -> dict[str, Any]:
        report.status = status
        stored = {**report.to_dict(), "facts": report.facts}
        with self._services.engine.begin() as conn:
            conn.execute(
                update(MigrationRun)
                .where(MigrationRun.id == report.run_id)
                .values(
                    status=status,
                    report=json.dumps(stored, default=str),
                    updated_at=self._services.clock(),
                )
            )
        return report.to_dict()

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        table = MigrationRun.__table__
        with self._services.engine.connect() as conn:
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


def _same_institution(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


# --- REPL -------------------------------------------------------------------------------


def plan_institution_migration(services: Services, institution_slug: str) -> dict[str, Any]:
    return MigrationService(services).plan(institution_slug)


def migrate_institution(
    services: Services, institution_slug: str, *, execute: bool = False
) -> dict[str, Any]:
    return MigrationService(services).migrate(institution_slug, execute=execute)
