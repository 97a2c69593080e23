"""Brokerage Hub's web app and CLI: ``flask --app app run`` / ``flask --app app <command>``.

A thin entry point: it builds the service layer once (services.composition),
registers one blueprint per area and the CLI commands, and renders errors in
one JSON shape.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import Flask

from services.errors import ConfigError


def create_app(test_config: dict[str, Any] | None = None, *, services: Any = None) -> Flask:
    from services.composition import build_services
    from services.redaction import configure_logging
    from settings import PROJECT_ROOT, load_settings

    if services is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            # One line that names the variable, not a traceback.
            click.echo(f"brokerage-hub: {exc.message}", err=True)
            raise SystemExit(2) from None
        configure_logging(settings.log_level)
        services = build_services(settings)
    app = Flask(
        __name__,
        instance_path=str(services.settings.instance_dir),
        template_folder=str(PROJECT_ROOT / "routes" / "templates"),
        static_folder=str(PROJECT_ROOT / "routes" / "static"),
    )
    app.config.from_mapping(JSON_SORT_KEYS=False)
    if test_config:
        app.config.update(test_config)
    app.extensions["services"] = services

    from routes import register_blueprints

    register_blueprints(app)
    register_cli(app)
    return app


def register_cli(app: Flask) -> None:
    @app.cli.command("migrate")
    def migrate() -> None:
        """Bring the database schema up to date."""
        from services.db import upgrade_schema

        upgrade_schema(app.extensions["services"].engine)
        click.echo("database schema is up to date")

    @app.cli.command("positions")
    @click.option(
        "--format",
        "format_",
        default="summary",
        show_default=True,
        help="full, summary, by_account or list",
    )
    @click.option("--refresh-provider", default=None, help="plaid or snaptrade: fetch it now")
    def positions(format_: str, refresh_provider: str | None) -> None:
        """Print positions as the MCP tool returns them (JSON)."""
        from services.position_views import get_positions_view

        _run_cli(
            lambda: get_positions_view(
                app.extensions["services"].positions, format_, refresh_provider
            )
        )


def _run_cli(action: Any) -> None:
    from services.errors import BrokerageHubError

    try:
        result = action()
    except BrokerageHubError as exc:
        click.echo(json.dumps(exc.to_dict(), indent=2), err=True)
        sys.exit(1)
    click.echo(json.dumps(result, indent=2, default=str))
