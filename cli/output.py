"""How every CLI command answers: JSON on stdout; our errors as the JSON error shape on stderr
with exit 1, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from core.errors import BrokerageHubError


def run_cli(
    action: Callable[[], Any],
    ok: Callable[[Any], bool] | None = None,
    *,
    quiet: bool = False,
) -> Any:
    """Print the result as JSON (unless ``quiet``); exit 1 on our error or when not ``ok``."""
    try:
        result = action()
    except BrokerageHubError as exc:
        click.echo(json.dumps(exc.to_dict(), indent=2), err=True)
        sys.exit(1)
    if not quiet:
        click.echo(json.dumps(result, indent=2, default=str))
    if ok is not None and not ok(result):
        sys.exit(1)
    return result
