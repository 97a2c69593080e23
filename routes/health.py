"""Liveness and readiness probes (no login, no provider call).

``/healthz``: the process answers (liveness; restart it when this fails).
``/readyz``: it can serve people now: the database answers, its schema is current and the
secret store can be read (readiness; send no traffic while it is 503, which names the
failing check).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from routes.common import services
from routes.security import public
from services.storage.readiness import check_readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@public
def readyz() -> Any:
    answer = check_readiness(services())
    response = jsonify(answer)
    if not answer["ready"]:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response
