"""Orders from the terminal: a person confirms (and so places) or rejects a preview.

``confirm-trade`` asks for the web password on the terminal and refuses without one: a
coding agent with a shell but no person at the keyboard cannot confirm an order by
itself, and the password is checked under the login brake, on the terminal's own budget
(web guesses from anywhere cannot lock a person at the terminal out, and wrong passwords
typed here are limited too).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from flask import Flask

from cli.errors import exit_with_error
from cli.output import run_cli
from core.errors import Conflict, InvalidInput

NO_TERMINAL = (
    "confirm-trade needs a person at a terminal: it asks for the web password there, and "
    "this command's input is not a terminal. Nothing was placed. Confirm on the web app's "
    "trades page instead."
)


def person_at_terminal() -> bool:
    """Standard input is a terminal and the process has one to ask on (``/dev/tty``)."""
    if not sys.stdin.isatty():
        return False
    try:
        with open("/dev/tty"):  # only whether it opens
            return True
    except OSError:
        return False


def register(app: Flask) -> None:
    @app.cli.command("confirm-trade")
    @click.argument("preview_id")
    def confirm_trade(preview_id: str) -> None:
        """Confirm a previewed order and place it (asks for the web password)."""
        services = app.extensions["services"]
        if not person_at_terminal():
            exit_with_error(InvalidInput(NO_TERMINAL, field="terminal"))
        review = run_cli(lambda: services.trading.review(preview_id), quiet=True)
        if not review["decidable"]:
            why_not = review["why_not"]
            if why_not in (None, "already decided"):
                why_not = (
                    f"preview {review['preview_id']} is already {review['status']}: there is "
                    "nothing left to confirm"
                )
            exit_with_error(Conflict(why_not))
        click.echo("\n".join(review["question"]), err=True)
        click.echo(f"(expires in {review['expires_in_seconds']} seconds)", err=True)
        password = click.prompt("Web password", hide_input=True, err=True)
        if not run_cli(
            lambda: services.web_auth.is_the_person(password, terminal=_terminal_user()),
            quiet=True,
        ):
            exit_with_error(InvalidInput("wrong password: nothing was placed", field="password"))
        if not click.confirm("Place this order now?", default=False, err=True):
            _reject(services, preview_id)
            return
        run_cli(lambda: services.trading.confirm_and_place(preview_id, via="cli"))

    @app.cli.command("reject-trade")
    @click.argument("preview_id")
    def reject_trade(preview_id: str) -> None:
        """Reject a previewed order: it will never be placed."""
        _reject(app.extensions["services"], preview_id)


def _reject(services: Any, preview_id: str) -> None:
    run_cli(lambda: services.trading.reject(preview_id, via="cli"))


def _terminal_user() -> str:
    """Who is confirming, as the login brake counts terminals: the terminal's user."""
    return str(os.getuid()) if hasattr(os, "getuid") else "terminal"
