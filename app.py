"""Brokerage Hub's web app and CLI: ``flask --app app run`` / ``flask --app app <command>``.

A thin entry point: it builds the service layer once (services.composition),
registers one blueprint per area and the CLI commands, and renders errors in
one JSON shape.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
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
    from services.auth import load_or_create_secret_key

    app.config.from_mapping(
        JSON_SORT_KEYS=False,
        SECRET_KEY=services.settings.secret_key
        or load_or_create_secret_key(services.settings.instance_dir),
        # Secure is added per request when it came over HTTPS (routes/security.py).
        SESSION_COOKIE_NAME="brokerage_hub_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only: nothing big is ever posted
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["services"] = services

    from routes import register_blueprints
    from routes.security import install_security

    register_blueprints(app)
    install_security(app)  # login on every route, CSRF, security headers
    register_cli(app)
    return app


def register_cli(app: Flask) -> None:
    @app.cli.command("migrate")
    def migrate() -> None:
        """Bring the database schema up to date."""
        from services.db import upgrade_schema

        upgrade_schema(app.extensions["services"].engine)
        click.echo("database schema is up to date")

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
        _run_cli(
            lambda: app.extensions["services"].migrations.migrate(
                institution,
                source=source,
                target=target,
                execute=execute,
                tolerance=tolerance,
                echo=lambda line: click.echo(line, err=True),
            ),
            ok=lambda report: report["ok"],
        )

    @app.cli.command("costs")
    def costs() -> None:
        """What each provider costs per month, and what wastes money."""
        _run_cli(lambda: app.extensions["services"].costs.report())

    @app.cli.command("set-password")
    @click.password_option(
        envvar="BROKERAGE_HUB_NEW_PASSWORD",
        help="The new password (asked twice when not given). Scripts can pass it in the "
        "environment variable BROKERAGE_HUB_NEW_PASSWORD, which other users cannot read "
        "the way they can read a command line.",
    )
    def set_password(password: str) -> None:
        """Set the web app's password for DEFAULT_USER_EMAIL (only a hash is stored)."""
        web_auth = app.extensions["services"].web_auth
        _run_cli(lambda: web_auth.passwords.set_password(password), quiet=True)
        click.echo(f"password set for {web_auth.user_email}")

    @app.cli.command("demo-login")
    def demo_login() -> None:
        """Emulator mode: print the demo login (a password is made up the first time)."""
        svc = app.extensions["services"]
        if not svc.emulator_mode:
            if not svc.web_auth.has_password():
                click.echo("no web password is set: run `flask --app app set-password`", err=True)
            return
        password = svc.web_auth.passwords.ensure_demo_password()
        if password is None:
            click.echo(f"web login: {svc.user_email} with the password set by set-password")
        else:
            click.echo(f"demo login (emulator mode): {svc.user_email} / {password}")

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

    @app.cli.command("health")
    @click.option(
        "--probe-trading",
        is_flag=True,
        help="Also test trading access (one symbol search per SnapTrade trade connection).",
    )
    def health(probe_trading: bool) -> None:
        """Check every connection (JSON); exit 1 when one needs attention."""
        _run_cli(
            lambda: app.extensions["services"].health.check_connections(probe_trading),
            ok=lambda report: not report["needs_attention"],
        )

    @app.cli.command("snaptrade-support-request")
    def snaptrade_support_request() -> None:
        """Print the request asking SnapTrade to enable trading (error 1020), filled in."""
        text: list[str] = []
        _run_cli(
            lambda: text.append(app.extensions["services"].health.snaptrade_support_request()),
            quiet=True,
        )
        click.echo(text[0])


def _run_cli(action: Any, ok: Any = None, *, quiet: bool = False) -> None:
    """Print the result as JSON; our errors as the JSON error shape with exit 1, no traceback."""
    from services.errors import BrokerageHubError

    try:
        result = action()
    except BrokerageHubError as exc:
        click.echo(json.dumps(exc.to_dict(), indent=2), err=True)
        sys.exit(1)
    if not quiet:
        click.echo(json.dumps(result, indent=2, default=str))
    if ok is not None and not ok(result):
        sys.exit(1)
