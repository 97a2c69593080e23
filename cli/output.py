"""How every CLI command answers: JSON on stdout; our errors (and a database outage) as the
JSON error shape on one line of stderr with exit 1, never a traceback (``cli.errors``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from cli.environments import with_environments
from cli.errors import exit_with_error, known_error


def run_cli(
    action: Callable[[], Any],
    ok: Callable[[Any], bool] | None = None,
    *,
    quiet: bool = False,
) -> Any:
    """Print the result as JSON (unless ``quiet``); exit 1 on our error or when not ``ok``."""
    try:
        result = action()
    except Exception as exc:
        error = known_error(exc)  # ours, or a database outage: one line, exit 1
        if error is None:
            raise
        exit_with_error(error)
    if not quiet:
        click.echo(json.dumps(with_environments(result), indent=2, default=str))
    if ok is not None and not ok(result):
        sys.exit(1)
    return result
