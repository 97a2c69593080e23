"""The steps of moving an institution from Plaid to SnapTrade (see ``services.migration``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from core.errors import BrokerageHubError, NotFound
from core.normalized import PROVIDERS, institution_display_name
from providers.plaid.holdings import load_plaid_positions
from providers.snaptrade.health import check_snaptrade_connection_health
from providers.snaptrade.holdings import load_snaptrade_positions
from services.connections import ConnectionRegistry, ProviderAccess
from services.linking import PlaidItemRemoval
from services.migration.comparison import compare_holdings
from services.migration.report import MigrationReport, same_institution, validate_migration
from services.migration.runs import MigrationInProgress, MigrationRuns
from services.positions import PositionService, PositionViews

log = logging.getLogger(__name__)

TOTALS_TOLERANCE = 0.01  # currency units; the same positions priced the same way


class MigrationService:
    def __init__(
        self,
        *,
        access: ProviderAccess,
        connections: ConnectionRegistry,
        positions: PositionService,
        views: PositionViews,
        plaid_items: PlaidItemRemoval,
        runs: MigrationRuns,
        plaid_item_monthly_usd: float,
        background: Callable[[Callable[[], None]], None],
    ) -> None:
        self._access = access
        self._connections = connections
        self._positions = positions
        self._views = views
        self._plaid_items = plaid_items
        self._runs = runs
        self._plaid_item_monthly_usd = plaid_item_monthly_usd
        # Runs a web-started move outside the request (a thread; synchronous in tests).
        self._background = background

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
        """Run the move here and now (CLI, MCP): the report when it has ended."""
        report = self._new_report(institution_slug, source, target, execute, tolerance, echo)
        ended = self._open(report)
        return ended if ended is not None else self._proceed(report, tolerance)

    def start(self, institution_slug: str, *, execute: bool, tolerance: float = 0.0001) -> int:
        """Start the move in the background (the web): the run's id, to watch its steps.

        The run is stored and holds its institution before this returns, so a second
        tab or worker asking meanwhile gets MigrationInProgress naming this run."""
        report = self._new_report(institution_slug, "plaid", "snaptrade", execute, tolerance)
        if self._open(report) is None:
            self._background(lambda: self._proceed_unattended(report, tolerance))
        assert report.run_id is not None
        return report.run_id

    def run(self, run_id: int) -> dict[str, Any]:
        """One stored run, with ``stalled``: active, but its process stopped renewing it.

        Checks left unfinished that way changed nothing and are closed here; a run
        stopped past the gates waits for a person to complete it (``start`` with
        ``execute``), never on a page view."""
        run = self._runs.get(run_id)
        if self._runs.stalled(run) and run["status"] == "running":
            self._runs.close_abandoned_checks(run_id)
            run = self._runs.get(run_id)
        return {**run, "stalled": self._runs.stalled(run)}

    def active_run(self, institution_slug: str) -> dict[str, Any] | None:
        return self._runs.active(institution_slug)

    # --- opening a run ------------------------------------------------------------------

    def _new_report(
        self,
        institution_slug: str,
        source: str,
        target: str,
        execute: bool,
        tolerance: float,
        echo: Callable[[str], None] | None = None,
    ) -> MigrationReport:
        if isinstance(institution_slug, str):
            institution_slug = institution_slug.strip().lower()
        validate_migration(institution_slug, source, target, tolerance)
        report = MigrationReport(
            institution_slug=institution_slug,
            institution=self._institution_name(institution_slug),
            source=source,
            target=target,
            execute=execute,
        )
        original = report.step
        runs = self._runs

        def recorded(name: str, ok: bool, summary: str, **detail: Any) -> bool:
            if echo is not None:
                echo(f"[{'ok' if ok else 'STOP'}] {name}: {summary}")
            result = original(name, ok, summary, **detail)
            runs.touch(report)  # others see the step; the lease is renewed
            return result

        report.step = recorded  # type: ignore[method-assign]
        return report

    def _open(self, report: MigrationReport) -> dict[str, Any] | None:
        """Store the run and hold its institution; the report instead when nothing is left
        to do (already moved, or interrupted and not asked to execute)."""
        slug, source, target = report.institution_slug, report.source, report.target
        previous = self._runs.latest_past_the_gates(slug, source, target)
        if previous is not None and previous["status"] == "completed":
            report.status = "already_completed"
            report.facts = json.loads(previous["report"]).get("facts", {})
            report.run_id = previous["id"]
            report.step(
                "check",
                True,
                f"{report.named} was already moved to {target} in run {previous['id']}; "
                "nothing was changed",
            )
            return report.to_dict()
        if previous is not None and previous["status"] in ("executing", "removed"):
            report.run_id = previous["id"]
            if not report.execute:
                report.status = "interrupted"
                return {
                    **report.to_dict(),
                    "steps": [
                        {
                            "step": "check",
                            "ok": False,
                            "summary": f"run {previous['id']} stopped after removing the "
                            "Plaid Item; run it again with execute to complete it",
                        }
                    ],
                }
            if not self._runs.take_over(previous["id"]):
                raise MigrationInProgress(previous["id"], report.institution)
            # An earlier run stopped after the irreversible step: finish it.
            stored = json.loads(previous["report"])
            report.steps = list(stored.get("steps", []))
            report.facts = stored.get("facts", {})
            report.status = previous["status"]
            report.facts["resumed"] = True
            report.step("resume", True, f"completing run {previous['id']} from step 5")
            return None
        report.run_id = self._runs.open(report)
        return None

    def _proceed(self, report: MigrationReport, tolerance: float) -> dict[str, Any]:
        with self._runs.held(report.run_id):
            return self._steps(report, tolerance)

    def _steps(self, report: MigrationReport, tolerance: float) -> dict[str, Any]:
        if report.facts.get("resumed"):
            return self._finish(report)
        try:
            if not self._check(report, tolerance):
                return self._runs.save(report, "stopped")
            if not report.execute:
                saving = self._plaid_item_monthly_usd
                report.facts["monthly_saving_usd"] = saving
                report.step(
                    "plan",
                    True,
                    f"would remove the Plaid Item for {report.named} "
                    f"({report.facts['secret_name']}), schedule its token for deletion "
                    f"(restorable for 7 days) and resync; saves about ${saving:.2f} a month",
                )
                return self._runs.save(report, "planned")
            return self._finish(report)
        except BrokerageHubError as exc:
            report.step("error", False, exc.message)
            return self._runs.save(
                report, "failed" if report.status == "running" else report.status
            )

    def _proceed_unattended(self, report: MigrationReport, tolerance: float) -> None:
        """A background run: any failure is recorded in its report, never lost."""
        try:
            self._proceed(report, tolerance)
        except Exception:
            log.exception("migration run %s failed unexpectedly", report.run_id)
            report.step("error", False, "internal error; see the server log")
            self._runs.save(report, "failed" if report.status == "running" else report.status)

    # --- steps 1-3 --------------------------------------------------------------------

    def _check(self, report: MigrationReport, tolerance: float) -> bool:
        # 1. GATE
        rows = [
            row
            for row in self._snaptrade_health()
            if same_institution(row["brokerage_name"], report.institution)
        ]
        healthy = [r for r in rows if not r["disabled"] and r["data_ok"]]
        if not rows or len(healthy) != len(rows):
            summary = (
                f"no SnapTrade connection to {report.named}"
                if not rows
                else f"the SnapTrade connection to {report.named} is not healthy"
            )
            return report.step("gate", False, summary, connections=rows)
        report.step(
            "gate",
            True,
            f"SnapTrade connection to {report.named} is healthy",
            connections=rows,
        )
        # 3 (needed by 2): which token secret is it?
        try:
            dry = self._remove_plaid_institution(report.institution_slug, dry_run=True)
        except BrokerageHubError as exc:
            return report.step("dry_run", False, exc.message)
        report.facts["secret_name"] = dry["secret_name"]
        # 2. VERIFY: both sides fetched fresh, compared, nothing cached or changed.
        access = self._access
        plaid_rows = [
            p.to_dict()
            for p in load_plaid_positions(
                access.plaid_token(dry["secret_name"]),
                access.plaid_client(),
                user_email=access.user_email,
                institution_slug=report.institution_slug,
            )
        ]
        snap_rows = [
            p.to_dict()
            for p in load_snaptrade_positions(
                access.user_email, access.snaptrade_client(), user_secret=self._user_secret()
            )
            if same_institution(p.institution, report.institution)
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
        before = self._views.answer("summary")
        report.facts["totals_before"] = before["summary"]["totals"]
        report.facts["plaid_tokens_before"] = self._plaid_tokens()
        return True

    # --- steps 5-7 --------------------------------------------------------------------

    def _finish(self, report: MigrationReport) -> dict[str, Any]:
        secret_name = report.facts["secret_name"]
        self._runs.save(report, "executing")
        # 5. EXECUTE (Plaid first, then the secret: see remove_plaid_institution)
        if self._access.secret_store.exists(secret_name):
            try:
                result = self._remove_plaid_institution(report.institution_slug, dry_run=False)
            except BrokerageHubError as exc:
                report.step("execute", False, f"nothing was deleted: {exc.message}")
                return self._runs.save(report, "failed")
            report.step(
                "execute",
                True,
                f"Plaid Item removed; {secret_name} scheduled for deletion (restorable 7 days)",
                result=result,
            )
        else:
            report.step("execute", True, f"{secret_name} was already scheduled for deletion")
        self._plaid_items.record_removed(report.institution_slug, report.institution)
        self._runs.save(report, "removed")
        # 6. RESYNC
        self._resync(report)
        # 7. VERIFY
        ok = self._verify_after(report)
        return self._runs.save(report, "completed" if ok else "failed")

    def _resync(self, report: MigrationReport) -> None:
        positions = self._positions
        try:
            count = positions.refresh_provider_positions("plaid")
            report.step("resync", True, f"Plaid rows replaced ({count} rows)")
            return
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
        # Fallback: drop the moved institution's Plaid rows (so it is not counted twice)
        # and keep the other institutions' last rows rather than losing them.
        removed = positions.delete_provider_positions("plaid", institution=report.institution)
        detail = f"refresh failed ({message}); removed {removed} {report.named} rows"
        if self._plaid_tokens():
            try:
                positions.refresh_provider_positions("plaid")
                detail += "; refreshed again"
            except (BrokerageHubError, ValueError) as exc:
                again = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
                detail += f"; second refresh failed too ({again}), last rows kept"
        report.step("resync", True, detail)

    def _verify_after(self, report: MigrationReport) -> bool:
        # Accounts and totals only: the institutions under each provider, at any portfolio size.
        view = self._views.answer("by_account", positions_per_account=0)
        under: dict[str, set[str]] = {provider: set() for provider in PROVIDERS}
        for entry in view["providers"]:
            under[entry["provider"]] |= {i["institution"] for i in entry["institutions"]}
        problems = []
        if report.institution in under[report.source]:
            problems.append(f"{report.named} still appears under {report.source}")
        if report.institution not in under[report.target]:
            problems.append(f"{report.named} does not appear under {report.target}")
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
            "; ".join(problems) or f"{report.named} only under {report.target}; totals unchanged",
        )

    # --- helpers ----------------------------------------------------------------------

    def _remove_plaid_institution(self, slug: str, *, dry_run: bool) -> dict[str, Any]:
        return self._plaid_items.remove_institution(slug, dry_run=dry_run, record=False)

    def _snaptrade_health(self) -> list[dict[str, Any]]:
        access = self._access
        return check_snaptrade_connection_health(
            access.user_email, access.snaptrade_client(), user_secret=self._user_secret()
        )

    def _user_secret(self) -> str:
        secret = self._access.snaptrade_user_secret()
        if secret is None:
            raise NotFound("the person is not registered with SnapTrade: connect a brokerage first")
        return secret

    def _plaid_tokens(self) -> list[str]:
        return self._access.plaid_token_names()

    def _institution_name(self, slug: str) -> str:
        for state in self._connections.list(self._access.user_email):
            if state.institution_slug == slug and state.institution_name:
                return state.institution_name
        return institution_display_name(slug)

    def runs(self, limit: int = 20, institution_slug: str | None = None) -> list[dict[str, Any]]:
        return self._runs.recent(limit, institution_slug)
