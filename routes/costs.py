"""Costs: what each provider bills per month, what wastes money, and calls per day."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from routes.common import services

bp = Blueprint("costs", __name__)


@bp.get("/costs")
def costs_page() -> Any:
    return render_template("costs.html", report=services().costs.report())
