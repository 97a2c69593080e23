"""A database schema that is behind stops every entry point with one line (but ``migrate``).

Outside the embedded default (which migrates by itself) the web app refuses to start
and every CLI command but ``migrate`` refuses to run, each with the same line as a bad
setting: ``brokerage-hub: the database schema is behind (...): run `flask --app app
migrate``` and exit 2. (The MCP server answers its first tool call with that line.)
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from core.errors import SchemaBehind

if TYPE_CHECKING:
    from services.composition import Services

log = logging.getLogger(__name__)

# Commands that must work on a schema that is behind.
RUN_ON_ANY_SCHEMA = frozenset({"migrate"})


def exit_if_schema_behind(services: Services) -> None:
    """Exit 2 with one line when the schema is behind; a database that cannot be reached
    is left to the running app (it answers 503 and recovers by itself). The embedded
    default migrates by itself on first use: nothing to check."""
    if services.settings.embedded_default:
        return
    try:
        services.require_current_schema()
    except SchemaBehind as exc:
        click.echo(f"brokerage-hub: {exc.message}", err=True)
        raise SystemExit(2) from None
    except SQLAlchemyError as exc:
        log.warning("could not check the database schema at start: %s", type(exc).__name__)


def gate_commands(app: Flask) -> None:
    """Every command registered so far (but ``migrate``) first checks the schema."""
    for name, command in app.cli.commands.items():
        if name in RUN_ON_ANY_SCHEMA or command.callback is None:
            continue
        command.callback = _checked(app, command.callback)


def _checked(app: Flask, callback: Any) -> Any:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        exit_if_schema_behind(app.extensions["services"])
        return callback(*args, **kwargs)

    return run
