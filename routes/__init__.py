"""Flask blueprints: one per area. Routes parse input, call one service, render.

Every route needs a logged-in session unless marked ``@public`` (see
``routes/security.py``); every error leaves in one JSON shape,
``{"error": {"type": ..., "message": ...}}``, for API callers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from services.errors import BrokerageHubError

if TYPE_CHECKING:
    from services.composition import Services


def services() -> Services:
    return current_app.extensions["services"]


def error_response(kind: str, message: str, status: int, **extra: Any) -> Any:
    return jsonify({"error": {"type": kind, "message": message, **extra}}), status


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


_wants_json = wants_json  # the name this module used before


def register_blueprints(app: Flask) -> None:
    from routes import auth, connections, costs, health, plaid, positions, snaptrade, trades

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
