"""What every route module shares: the service layer of this app, and the one error shape."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from flask import current_app, jsonify, request, url_for

from core.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from services.composition import Services

# ASCII digits only: str.isdigit() also accepts "²" and "١", which int() refuses or reads.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")


def services() -> Services:
    return current_app.extensions["services"]


def error_response(kind: str, message: str, status: int, **extra: Any) -> Any:
    return jsonify({"error": {"type": kind, "message": message, **extra}}), status


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def whole_number(text: str, name: str) -> int:
    """A query-string number, or a clear 400 naming the parameter."""
    if _WHOLE_NUMBER.fullmatch(text.strip()) is None:
        raise InvalidInput(f"{name} {text[:40]!r} is not a whole number", field=name)
    return int(text)


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of this app for a provider to send the person back to.

    Built from PUBLIC_BASE_URL, never from the request's Host header: anybody can send
    ``Host: evil.example``, and the provider would then redirect the person there."""
    base = current_app.config.get("PUBLIC_BASE_URL") or ""
    if not base:
        raise ConfigError("PUBLIC_BASE_URL is not set: set it to where people reach this app")
    return base + url_for(endpoint, **values)
