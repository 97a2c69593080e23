"""The web app's locks: login on every route, CSRF tokens, cookie flags, security headers.

* Every endpoint needs the logged-in session unless its view is marked
  :func:`public` (the health probe, the login page, static files, provider
  webhooks). A test walks ``app.url_map`` so a new route cannot forget this.
* Every state-changing request (anything but GET/HEAD/OPTIONS) must carry the
  session's CSRF token, in the ``csrf_token`` form field or the ``X-CSRF-Token``
  header, unless its view is marked :func:`csrf_exempt` (provider webhooks, which
  prove themselves with a signature instead).
* Being logged in is a server-side session (``services.web_access.sessions``): the
  signed cookie carries its random id, checked against the database on every
  request, so logging out, a new password, idling and the absolute lifetime end it
  for every worker at once.
* The session cookie is HttpOnly and SameSite=Lax (set in ``create_app``), and
  Secure whenever PUBLIC_BASE_URL is https or the request came over HTTPS.
* Every answer carries a strict Content-Security-Policy (scripts and styles only
  from this origin, no inline script, no framing) and friends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import Forbidden

from routes.common import error_response, wants_json

F = TypeVar("F", bound=Callable[..., Any])

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_ID = "sid"
MAX_NEXT_LENGTH = 2000

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        # Forms only post to us; provider pages are reached by plain links, never by
        # a form's redirect (browsers apply form-action to redirects too).
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Our URLs carry job and flow ids: do not hand them to the provider pages we link to.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class CSRFError(Forbidden):
    description = (
        "The form has expired or did not come from this site (missing or wrong CSRF "
        "token). Reload the page and try again."
    )


def public(view: F) -> F:
    """Mark a view as reachable without logging in (keep this list short)."""
    view.login_exempt = True  # type: ignore[attr-defined]
    return view


def csrf_exempt(view: F) -> F:
    """Mark a view as taking state-changing requests without a CSRF token (webhooks only)."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def csrf_token() -> str:
    """The session's CSRF token (made on first use); templates call it for every form."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return str(token)


def _sessions() -> Any:
    return current_app.extensions["services"].web_auth.sessions


def log_in(session_id: str) -> None:
    """Carry a new server-side session (a new id and CSRF token: no fixation across login).

    A session this browser had before ends: logging in again never leaves two alive."""
    _sessions().end(session.get(SESSION_ID))
    session.clear()
    session.permanent = True
    session[SESSION_ID] = session_id
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    g.logged_in = True


def log_out() -> None:
    """End the server-side session, so the cookie is worth nothing even if kept."""
    _sessions().end(session.get(SESSION_ID))
    session.clear()
    g.logged_in = False


def is_logged_in() -> bool:
    """Whether this request carries a live session of the user (checked once per request)."""
    if "logged_in" not in g:
        user = _sessions().user_of(session.get(SESSION_ID))
        g.logged_in = user is not None and user == current_app.extensions["services"].user_email
    return bool(g.logged_in)


def safe_next_url(target: object) -> str:
    """Where to go after login: only a plain path on this site, never another host."""
    home = url_for("positions.positions_page")
    if (
        not isinstance(target, str)
        or not target.startswith("/")
        or target.startswith("//")
        or len(target) > MAX_NEXT_LENGTH
        # A control character (CR/LF above all) or a backslash has no business in a path.
        or any(ch < " " or ch in "\\\x7f" for ch in target)
    ):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return home
    return target


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, which carries the session id and the CSRF token; Secure when
    configured (an https PUBLIC_BASE_URL) or whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = bool(app.config["SESSION_COOKIE_SECURE"])
        return configured or (has_request_context() and request.is_secure)


def _view_flag(name: str) -> bool:
    if request.endpoint is None:
        return False
    if request.endpoint == "static":
        return name == "login_exempt"
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, name, False))


def _require_login() -> Any:
    if _view_flag("login_exempt") or is_logged_in():
        return None
    if wants_json():
        return error_response("unauthorized", "log in first", 401)
    if request.method == "GET":
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.login"), code=303)


def _require_csrf_token() -> None:
    if request.method in SAFE_METHODS or _view_flag("csrf_exempt"):
        return
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    # Bytes: compare_digest raises TypeError for a str with non-ASCII characters, and a
    # forged token may hold anything.
    if (
        not expected
        or not sent
        or not secrets.compare_digest(str(expected).encode(), str(sent).encode())
    ):
        raise CSRFError()


def _add_security_headers(response: Any) -> Any:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        # Pages hold account data: no copy in the browser's or a proxy's cache.
        response.headers["Cache-Control"] = "no-store"
    if request.is_secure or current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    return response


def _csrf_failed(exc: CSRFError) -> Any:
    if wants_json():
        return error_response("csrf_failed", exc.description or "", 403)
    return render_template("error.html", title="Form expired", message=exc.description), 403


def install_security(app: Flask) -> None:
    app.session_interface = _SessionInterface()
    # Login is checked before the CSRF token: a stranger learns nothing from either.
    app.before_request(_require_login)
    app.before_request(_require_csrf_token)
    app.after_request(_add_security_headers)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["is_logged_in"] = is_logged_in
