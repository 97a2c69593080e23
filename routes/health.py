"""Liveness probe (no login, no provider call)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from routes.security import public

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Any:
    return jsonify({"status": "ok"})
