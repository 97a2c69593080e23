"""Brokerage Hub's web app and CLI: ``flask --app app run`` / ``flask --app app <command>``.

A thin entry point: it builds the service layer once (``services.composition``),
registers one blueprint per area (``routes``) and the CLI commands (``cli``), and
renders errors in one JSON shape.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from cli import register_cli
from cli.schema import exit_if_schema_behind
from core.errors import ConfigError
from core.redaction import configure_logging
from routes import register_blueprints
from routes.environment import install_environment_banner
from routes.origin import install_origin_notice
from routes.provider_text import install_provider_text_rules
from routes.security import install_security
from services.composition import Services, build_services
from services.web_access.auth import load_or_create_secret_key
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
        if not settings.public_base_url and _serves_web_requests():
            # Absolute URLs handed to providers (redirects, webhooks) are built from it,
            # never from a request's Host header, which anybody can forge.
            click.echo(
                "brokerage-hub: PUBLIC_BASE_URL is not set: set it to where people reach "
                "this app, e.g. https://hub.example.com",
                err=True,
            )
            raise SystemExit(2)
        services = build_services(settings)
        if _serves_web_requests():
            exit_if_schema_behind(services)  # one line: run `flask --app app migrate`
    app = Flask(
        __name__,
        instance_path=str(services.settings.instance_dir),
        template_folder=str(PROJECT_ROOT / "routes" / "templates"),
        static_folder=str(PROJECT_ROOT / "routes" / "static"),
    )
    settings = services.settings
    app.config.from_mapping(
        JSON_SORT_KEYS=False,
        SECRET_KEY=settings.secret_key or load_or_create_secret_key(settings.instance_dir),
        SESSION_COOKIE_NAME="brokerage_hub_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind TLS the cookie never travels in clear (also set per request over HTTPS).
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        # The server-side session decides how long a login lasts; the cookie never
        # outlives it and is not re-issued on every request.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_max_hours),
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only: nothing big is ever posted
        PUBLIC_BASE_URL=settings.public_base_url,
    )
    if settings.trusted_proxies:
        # Only as many proxies as configured may say who the client is, that it was https
        # and which host it asked for; a client cannot spoof X-Forwarded-* past them.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n
        )
    if test_config:
        app.config.update(test_config)
    app.extensions["services"] = services
    install_provider_text_rules(app)  # provider text inert on every page and JSON answer
    register_blueprints(app)
    install_environment_banner(app)  # every page says each provider's environment
    install_origin_notice(app)  # and when it is open on another origin than PUBLIC_BASE_URL
    install_security(app)  # login on every route, CSRF, security headers
    register_cli(app)
    return app


def _serves_web_requests() -> bool:
    """True unless this is a ``flask --app app <command>`` other than ``run``."""
    if click.get_current_context(silent=True) is None:
        return True  # gunicorn, or any WSGI server, calling create_app()
    return "run" in sys.argv[1:]
