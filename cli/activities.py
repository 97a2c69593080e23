"""Activity history and income from the terminal: the same answers as the MCP tools."""

from __future__ import annotations

import click
from flask import Flask

from cli.output import run_cli


def register(app: Flask) -> None:
    @app.cli.command("activities")
    @click.option("--start", "start_date", default=None, help="first day, YYYY-MM-DD")
    @click.option("--end", "end_date", default=None, help="last day, YYYY-MM-DD")
    @click.option("--type", "type_", default=None, help="dividend, fee, buy, ... (comma-separated)")
    @click.option("--account", "account_id", default=None, help="one account's id")
    @click.option("--ticker", default=None, help="one ticker")
    @click.option("--limit", default=None, type=int, help="activities per page (at most 500)")
    @click.option("--cursor", default=None, help="next_cursor of the previous page")
    @click.option("--sync", is_flag=True, help="sync every provider's history first")
    def activities(
        start_date: str | None,
        end_date: str | None,
        type_: str | None,
        account_id: str | None,
        ticker: str | None,
        limit: int | None,
        cursor: str | None,
        sync: bool,
    ) -> None:
        """Print account activity as the get_activities tool returns it (JSON)."""
        run_cli(
            lambda: app.extensions["services"].activities.activities(
                start_date, end_date, type_, account_id, ticker, limit, cursor, refresh=sync
            )
        )

    @app.cli.command("income")
    @click.option(
        "--period",
        default=None,
        help="this_month, last_month, this_quarter, last_quarter, this_year, last_year, "
        "year_to_date (default) or last_12_months",
    )
    @click.option("--start", "start_date", default=None, help="first day, YYYY-MM-DD")
    @click.option("--end", "end_date", default=None, help="last day, YYYY-MM-DD")
    def income(period: str | None, start_date: str | None, end_date: str | None) -> None:
        """Print dividends, interest and fees for a period as get_income returns them."""
        run_cli(lambda: app.extensions["services"].activities.income(period, start_date, end_date))
