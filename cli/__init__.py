"""The command line: ``flask --app app <command>``. One module per area; each answers in JSON
through ``cli.output``."""

from __future__ import annotations

from flask import Flask

from cli import connections, portfolio, setup


def register_cli(app: Flask) -> None:
    for module in (setup, portfolio, connections):
        module.register(app)
