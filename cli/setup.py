"""Setting up: the schema, the web password, the demo login."""

from __future__ import annotations

import click
from flask import Flask

from cli.environments import environments_line, storage_line
from cli.output import run_cli


def register(app: Flask) -> None:
    @app.cli.command("migrate")
    def migrate() -> None:
        """Bring the database schema up to date (works on a schema that is behind)."""
        app.extensions["services"].migrate_schema()
        click.echo("database schema is up to date")

    @app.cli.command("set-password")
    @click.password_option(
        envvar="BROKERAGE_HUB_NEW_PASSWORD",
        help="The new password (asked twice when not given). Scripts can pass it in the "
        "environment variable BROKERAGE_HUB_NEW_PASSWORD, which other users cannot read "
        "the way they can read a command line.",
    )
    def set_password(password: str) -> None:
        """Set the web app's password for DEFAULT_USER_EMAIL (only a hash is stored)."""
        svc = app.extensions["services"]
        web_auth = svc.web_auth
        run_cli(lambda: web_auth.set_password(password), quiet=True)
        click.echo(f"password set for {web_auth.user_email}; every web session was logged out")
        # The hash goes to the secret store, the ended sessions are in the database.
        click.echo(storage_line(svc.settings))

    @app.cli.command("clear-login-brake")
    @click.option("--client", default=None, help="Only this client address (default: all).")
    def clear_login_brake(client: str | None) -> None:
        """Let logins through again after too many failed attempts (the owner's way back in)."""
        svc = app.extensions["services"]
        cleared = run_cli(lambda: svc.web_auth.brake.clear(client), quiet=True)
        click.echo(f"login brake cleared: {cleared} recorded attempt(s) forgotten")
        click.echo(storage_line(svc.settings, secret_store=False))  # attempts live there only

    @app.cli.command("demo-login")
    def demo_login() -> None:
        """Emulator mode: print the demo login (a password is made up the first time)."""
        svc = app.extensions["services"]
        if not svc.emulator_mode:
            click.echo(environments_line(svc.settings))
            if not svc.web_auth.has_password():
                click.echo("no web password is set: run `flask --app app set-password`", err=True)
            return
        password = svc.web_auth.passwords.ensure_demo_password()
        # Before the login, which stays the last line (`make run` ends with it).
        click.echo(environments_line(svc.settings))
        if password is None:
            click.echo(f"web login: {svc.user_email} with the password set by set-password")
        else:
            click.echo(f"demo login (emulator mode): {svc.user_email} / {password}")
