"""How every CLI command fails: one line on stderr (the JSON error shape), exit 1.

Our own errors and a database outage are expected failures: they leave as
``{"error": {"type": ..., "message": ...}}`` on one line, never as a traceback and never
with a file path. :func:`guard_commands` gives every command that guarantee, also the
ones that do not answer through :func:`cli.output.run_cli`, and first makes sure the
secret store can be read: a corrupt or unreadable secret file stops every command but
``migrate`` (which never reads it) with the same one line, instead of each command
failing, or half-answering, its own way.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, NoReturn

import click
from flask import Flask

from core.errors import BrokerageHubError
from services.storage.outage import database_outage
from services.storage.readiness import require_secret_store

# Commands that never read the secret store: they run whatever state it is in.
RUN_WITHOUT_SECRET_STORE = frozenset({"migrate"})


def known_error(exc: BaseException) -> BrokerageHubError | None:
    """``exc`` as one of our errors when it is one (or a database outage); else None (a bug)."""
    if isinstance(exc, BrokerageHubError):
        return exc
    return database_outage(exc)


def exit_with_error(error: BrokerageHubError) -> NoReturn:
    click.echo(json.dumps(error.to_dict()), err=True)
    sys.exit(1)


def guard_commands(app: Flask) -> None:
    """Every command registered so far fails with one line on our errors and on outages."""
    for name, command in app.cli.commands.items():
        if command.callback is not None:
            command.callback = _guarded(
                app, command.callback, check_store=name not in RUN_WITHOUT_SECRET_STORE
            )


def _guarded(app: Flask, callback: Any, *, check_store: bool) -> Any:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            if check_store:
                require_secret_store(app.extensions["services"])
            return callback(*args, **kwargs)
        except Exception as exc:
            error = known_error(exc)
            if error is None:
                raise
            exit_with_error(error)

    return run
