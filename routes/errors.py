"""How errors leave the web app: the JSON error shape for API callers, a page for people.

* Our own errors (:class:`BrokerageHubError`) answer with their status and
  ``{"error": {"type": ..., "message": ...}}``; the message quotes at most a short prefix
  of any long value (``core.errors.bounded_message``).
* A database outage is a 503 with ``Retry-After`` (never a 500): the next request after
  the database is back simply works. A secret store that cannot be read is a 503 too.
* Anything else is a bug: logged with its traceback, answered as a bare 500.

API callers (``/api/...`` or ``Accept: application/json``) always get JSON; a page gets a
small HTML page for a 5xx. That page stands alone (no session, no database), so it can
still be drawn when those are what failed. No answer names a file path.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from core.errors import BrokerageHubError, Unavailable, bounded_message
from routes.common import wants_json
from services.storage.outage import database_outage

log = logging.getLogger(__name__)

PAGE_TITLES = {503: "Temporarily unavailable", 504: "Temporarily unavailable"}
# A person in a browser has no terminal: where an error's message names a command to run
# (for the CLI and the readiness probe), the page says what it means for them instead.
PAGE_MESSAGES = {
    "schema_behind": (
        "The database schema is older than this version of Brokerage Hub, so pages cannot be "
        "shown. Nothing can be done about it in the browser: whoever runs this Brokerage Hub "
        "must run its schema migration on the server. Then reload this page."
    ),
}


def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(BrokerageHubError, _our_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _answer(body: dict[str, Any], status: int, retry_after: float | None = None) -> Any:
    """JSON for API callers and for 4xx; a page for a person meeting a 5xx."""
    if wants_json() or status < 500:
        response = make_response(jsonify(body), status)
    else:
        response = make_response(
            render_template(
                "service_error.html",
                title=PAGE_TITLES.get(status, "Something went wrong"),
                message=PAGE_MESSAGES.get(body["error"]["type"], body["error"]["message"]),
                retry_after=_whole_seconds(retry_after) if retry_after else None,
            ),
            status,
        )
    if retry_after:
        response.headers["Retry-After"] = str(_whole_seconds(retry_after))
    return response


def _whole_seconds(seconds: float) -> int:
    return int(seconds + 0.999)


def _our_error(exc: BrokerageHubError) -> Any:
    retry_after = getattr(exc, "retry_after_seconds", None) or getattr(exc, "retry_after", None)
    if isinstance(exc, Unavailable):
        log.warning("%s on %s: %s", exc.kind, request.path, bounded_message(exc.message))
    return _answer(exc.to_dict(), exc.http_status, retry_after)


def _http_error(exc: HTTPException) -> Any:
    if isinstance(exc, InternalServerError) and exc.original_exception is not None:
        # Raised outside the view (opening or saving the session): the same rules apply.
        original = exc.original_exception
        if isinstance(original, BrokerageHubError):
            return _our_error(original)
        return _unexpected(original)
    if not wants_json():
        return exc
    body = {
        "error": {
            "type": exc.name.lower().replace(" ", "_"),
            "message": bounded_message(exc.description or exc.name),
        }
    }
    return jsonify(body), exc.code or 500


def _unexpected(exc: BaseException) -> Any:
    outage = database_outage(exc)
    if outage is not None:
        log.warning(
            "database not reachable on %s (%s): answering 503", request.path, type(exc).__name__
        )
        return _our_error(outage)
    log.error("unhandled error on %s", request.path, exc_info=exc)
    body = {"error": {"type": "internal_error", "message": "internal error; see the server log"}}
    return _answer(body, 500)
