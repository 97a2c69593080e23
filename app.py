"""Brokerage Hub's web app and CLI: ``flask --app app run`` / ``flask --app app <command>``.

A thin entry point: it builds the service layer once (``services.composition``),
registers one blueprint per area (``routes``) and the CLI commands (``cli``), and
renders errors in one JSON shape.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from flask import Flask

from cli import register_cli
from core.errors import ConfigError
from core.redaction import configure_logging
from routes import register_blueprints
from routes.security import install_security
from services.auth import load_or_create_secret_key
from services.composition import Services, build_services
from settings import PROJECT_ROOT, load_settings


def create_app(
    test_config: dict[str, Any] | None = None, *, services: Services | None = None
) -> Flask:
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
    register_blueprints(app)
    install_security(app)  # login on every route, CSRF, security headers
    register_cli(app)
    return app
