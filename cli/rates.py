"""Exchange rates from the terminal: refresh the ECB's reference rates now."""

from __future__ import annotations

from flask import Flask

from cli.output import run_cli


def register(app: Flask) -> None:
    @app.cli.command("refresh-rates")
    def refresh_rates() -> None:
        """Download the ECB's reference rates from FX_RATES_URL now (one refresh at a time)."""
        run_cli(lambda: app.extensions["services"].fx.refresh_now())
