"""The command line: ``flask --app app <command>``. One module per area; each answers in JSON
through ``cli.output``."""

from __future__ import annotations

from flask import Flask

from cli import activities, connections, portfolio, rates, setup, trades, webhooks
from cli.errors import guard_commands
from cli.schema import gate_commands


def register_cli(app: Flask) -> None:
    for module in (setup, portfolio, activities, connections, trades, rates, webhooks):
        module.register(app)
    # Outside the embedded default, a schema that is behind stops every command but
    # `migrate` with one line.
    gate_commands(app)
    # Our errors and a database outage end any command with one line, exit 1.
    guard_commands(app)
