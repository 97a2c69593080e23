"""Provider webhooks: ``POST /webhooks/plaid`` and ``POST /webhooks/snaptrade``.

Public (no session, no CSRF: the providers sign instead) and small: a body over 64 kB is
refused before it is read (MAX_CONTENT_LENGTH); a body that is not plain JSON (nested more
than a few levels, NaN, malformed: the providers' verification reads it with
``loads_untrusted``) and an unverified one get 401 and change nothing; a copy
gets 200 and is ignored; a flood gets 429. A verified event is stored and its state change
applied before the answer; no provider data is fetched here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from core.errors import Conflict, WebhookRejected
from routes.common import services
from routes.security import csrf_exempt, public

bp = Blueprint("webhooks", __name__)


def _answer(receive: Any, header: str) -> Any:
    body = request.get_data(cache=False)
    try:
        outcome = receive(body, request.headers.get(header))
    except WebhookRejected as exc:
        return jsonify({"error": {"type": exc.kind, "message": exc.message}}), 401
    except Conflict as exc:
        response = jsonify({"error": {"type": "rate_limited", "message": exc.message}})
        response.status_code = 429
        response.headers["Retry-After"] = "60"
        return response
    return jsonify(outcome), 200


@bp.post("/webhooks/plaid")
@public
@csrf_exempt
def plaid_webhook() -> Any:
    return _answer(services().webhooks.receive_plaid, "Plaid-Verification")


@bp.post("/webhooks/snaptrade")
@public
@csrf_exempt
def snaptrade_webhook() -> Any:
    return _answer(services().webhooks.receive_snaptrade, "Signature")
