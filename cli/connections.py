"""Connections from the terminal: the health check and the SnapTrade support request."""

from __future__ import annotations

import click
from flask import Flask

from cli.environments import environments_line
from cli.output import run_cli
from core.untrusted import shown_text


def register(app: Flask) -> None:
    @app.cli.command("health")
    @click.option(
        "--probe-trading",
        is_flag=True,
        help="Also test trading access (one symbol search per SnapTrade trade connection).",
    )
    def health(probe_trading: bool) -> None:
        """Check every connection (JSON); exit 1 when one needs attention."""
        run_cli(
            lambda: app.extensions["services"].health.check_connections(probe_trading),
            ok=lambda report: not report["needs_attention"],
        )

    @app.cli.command("snaptrade-support-request")
    def snaptrade_support_request() -> None:
        """Print the request asking SnapTrade to enable trading (error 1020), filled in."""
        svc = app.extensions["services"]
        text = run_cli(svc.health.snaptrade_support_request, quiet=True)
        # Above the request, so it can be copied from the line after as it is.
        click.echo(environments_line(svc.settings))
        click.echo(shown_text(text))  # its own lines; no control character of a provider's
