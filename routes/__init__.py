"""Flask blueprints: one per area. Routes parse input, call one service, render.

Every route needs a logged-in session unless marked ``@public`` (see
``routes/security.py``); every error leaves in one JSON shape,
``{"error": {"type": ..., "message": ...}}``, for API callers, and a 5xx reaches a person
as a small page (``routes/errors.py``).
"""

from __future__ import annotations

from flask import Flask

from routes import (
    activity,
    auth,
    connections,
    costs,
    health,
    migrations,
    plaid,
    positions,
    snaptrade,
    trades,
    webhooks,
)
from routes.errors import install_error_handlers


def register_blueprints(app: Flask) -> None:
    for module in (
        health,
        auth,
        positions,
        activity,
        connections,
        plaid,
        snaptrade,
        trades,
        migrations,
        costs,
        webhooks,
    ):
        app.register_blueprint(module.bp)

    install_error_handlers(app)  # routes/errors.py: the JSON shape, pages, outages
