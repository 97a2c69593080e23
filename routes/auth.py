"""Logging in and out (one user, from the settings).

A successful login also leaves a device cookie (``services.web_access.devices``): sent back
with later logins from the same browser, it gives that browser its own budget of
attempts, so guesses from elsewhere cannot lock its owner out. HttpOnly, SameSite=Lax,
Secure under the same rule as the session cookie, sent only to the login page, and
kept for a year; logging out leaves it (it opens nothing by itself).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from routes.common import error_response, services, wants_json
from routes.security import log_in, log_out, public, safe_next_url
from services.web_access.brake import TooManyLoginAttempts

bp = Blueprint("auth", __name__)
DEVICE_COOKIE = "brokerage_hub_device"


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
            email,
            password,
            client=request.remote_addr or "unknown",
            device_cookie=request.cookies.get(DEVICE_COOKIE),
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
    response = redirect(safe_next_url(request.form.get("next")), code=303)
    _remember_device(response)
    return response


def _remember_device(response: Any) -> None:
    web_auth = services().web_auth
    response.set_cookie(
        DEVICE_COOKIE,
        web_auth.new_device_cookie(),
        max_age=int(web_auth.devices.lifetime.total_seconds()),
        path=url_for("auth.login_submit"),
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]) or request.is_secure,
        httponly=True,
        samesite="Lax",
    )


@bp.post("/logout")
def logout() -> Any:
    log_out()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
