"""What every route module shares: the service layer of this app, and the one error shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app, jsonify, request

from core.errors import InvalidInput

if TYPE_CHECKING:
    from services.composition import Services


def services() -> Services:
    return current_app.extensions["services"]


def error_response(kind: str, message: str, status: int, **extra: Any) -> Any:
    return jsonify({"error": {"type": kind, "message": message, **extra}}), status


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def whole_number(text: str, name: str) -> int:
    """A query-string number, or a clear 400 naming the parameter."""
    if not text.strip().lstrip("-").isdigit() or len(text) > 12:
        raise InvalidInput(f"{name} {text[:40]!r} is not a whole number", field=name)
    return int(text)
