"""Flask blueprints: one per area. Routes parse input, call one service, render."""

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


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register_blueprints(app: Flask) -> None:
    from routes import health, plaid, positions, snaptrade

    for module in (health, positions, plaid, snaptrade):
        app.register_blueprint(module.bp)

    @app.errorhandler(BrokerageHubError)
    def handle_our_error(exc: BrokerageHubError) -> Any:
        return jsonify(exc.to_dict()), exc.http_status

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Any:
        if not _wants_json():
            return exc
        return error_response(
            exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code or 500
        )

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error on %s", request.path)
        return error_response("internal_error", "internal error; see the server log", 500)
