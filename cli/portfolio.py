"""The portfolio from the terminal: positions, costs, and moving an institution."""

from __future__ import annotations

import click
from flask import Flask

from cli.output import run_cli
from core.untrusted import one_line


def register(app: Flask) -> None:
    @app.cli.command("positions")
    @click.option(
        "--format",
        "format_",
        default="summary",
        show_default=True,
        help="full, summary, holdings, by_account or list",
    )
    @click.option("--refresh-provider", default=None, help="plaid or snaptrade: fetch it now")
    @click.option("--limit", default=None, type=int, help="rows per page (full, list, holdings)")
    @click.option("--cursor", default=None, help="next_cursor of the previous page")
    def positions(
        format_: str, refresh_provider: str | None, limit: int | None, cursor: str | None
    ) -> None:
        """Print positions as the MCP tool returns them (JSON)."""
        run_cli(
            lambda: app.extensions["services"].position_views.answer(
                format_, refresh_provider, limit=limit, cursor=cursor
            )
        )

    @app.cli.command("costs")
    def costs() -> None:
        """What each provider costs per month, and what wastes money."""
        run_cli(lambda: app.extensions["services"].costs.report())

    @app.cli.command("migrate-institution")
    @click.argument("institution")
    @click.option("--from", "source", default="plaid", show_default=True)
    @click.option("--to", "target", default="snaptrade", show_default=True)
    @click.option("--execute", is_flag=True, help="Remove the Plaid Item (default: dry run).")
    @click.option(
        "--tolerance",
        default=0.0001,
        show_default=True,
        type=float,
        help="Relative quantity tolerance when comparing holdings.",
    )
    def migrate_institution(
        institution: str, source: str, target: str, execute: bool, tolerance: float
    ) -> None:
        """Move an institution from Plaid to SnapTrade (checks, dry run, then --execute)."""
        report = run_cli(
            lambda: app.extensions["services"].migrations.migrate(
                institution,
                source=source,
                target=target,
                execute=execute,
                tolerance=tolerance,
                # Each step's line quotes provider text: one line on the terminal, always.
                echo=lambda line: click.echo(one_line(line), err=True),
            ),
            ok=lambda report: report["ok"],
        )
        if report["status"] == "planned":
            click.echo("Run the same command again with --execute to do it.", err=True)
