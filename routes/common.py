"""What every route module shares: the service layer of this app, and the one error shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app, jsonify, request

if TYPE_CHECKING:
    from services.composition import Services


def services() -> Services:
    return current_app.extensions["services"]


def error_response(kind: str, message: str, status: int, **extra: Any) -> Any:
    return jsonify({"error": {"type": kind, "message": message, **extra}}), status


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"
