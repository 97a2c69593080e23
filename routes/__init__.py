"""Flask blueprints: one per area. Routes parse input, call one service, render.

Every route needs a logged-in session unless marked ``@public`` (see
``routes/security.py``); every error leaves in one JSON shape,
``{"error": {"type": ..., "message": ...}}``, for API callers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from core.errors import BrokerageHubError
from routes import auth, connections, costs, health, plaid, positions, snaptrade, trades
from routes.common import error_response, wants_json


def register_blueprints(app: Flask) -> None:
    for module in (health, auth, positions, connections, plaid, snaptrade, trades, costs):
        app.register_blueprint(module.bp)

    @app.errorhandler(BrokerageHubError)
    def handle_our_error(exc: BrokerageHubError) -> Any:
        response = jsonify(exc.to_dict())
        retry_after = getattr(exc, "retry_after_seconds", None) or getattr(exc, "retry_after", None)
        if retry_after:
            response.headers["Retry-After"] = str(int(retry_after + 0.999))
        return response, exc.http_status

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Any:
        if not wants_json():
            return exc
        return error_response(
            exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code or 500
        )

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error on %s", request.path)
        return error_response("internal_error", "internal error; see the server log", 500)
