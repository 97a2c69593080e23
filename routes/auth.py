"""Logging in and out (one user, from the settings)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from routes.common import error_response, services, wants_json
from routes.security import log_in, log_out, public, safe_next_url
from services.login_brake import TooManyLoginAttempts

bp = Blueprint("auth", __name__)


def _login_page(status: int = 200, *, error: str | None = None, **headers: str) -> Any:
    svc = services()
    return (
        render_template(
            "login.html",
            error=error,
            # Not pre-filled with the configured email: that would tell any visitor the user name.
            email=request.form.get("email", ""),
            next_url=request.values.get("next", ""),
            password_set=svc.web_auth.has_password(),
            emulator_mode=svc.emulator_mode,
        ),
        status,
        headers,
    )


@bp.get("/login")
@public
def login() -> Any:
    return _login_page()


@bp.post("/login")
@public
def login_submit() -> Any:
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    try:
        session_id = services().web_auth.login(
            email, password, client=request.remote_addr or "unknown"
        )
    except TooManyLoginAttempts as exc:
        retry_after = {"Retry-After": str(exc.retry_after_seconds)}
        if wants_json():
            response, status = error_response(exc.kind, exc.message, 429)
            response.headers.update(retry_after)
            return response, status
        return _login_page(429, error=exc.message, **retry_after)
    if session_id is None:
        if wants_json():  # an API caller gets the one JSON error shape, not the form
            return error_response("unauthorized", "Wrong email or password.", 401)
        return _login_page(401, error="Wrong email or password.")
    log_in(session_id)
    return redirect(safe_next_url(request.form.get("next")), code=303)


@bp.post("/logout")
def logout() -> Any:
    log_out()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
