"""Helpers for the web tests: an app on the test services, a password, a logged-in client.

Imported explicitly by tests/surfaces/test_web*.py (this is not a conftest).
"""

from __future__ import annotations

from typing import Any

from app import create_app

TEST_PASSWORD = "correct horse battery staple"


def make_app(services: Any, **config: Any) -> Any:
    return create_app({"TESTING": True, **config}, services=services)


def csrf_token(client: Any) -> str:
    """The session's CSRF token, made by visiting the login page if there is none yet."""
    with client.session_transaction() as session:
        token = session.get("csrf_token")
    if token:
        return str(token)
    client.get("/login")
    with client.session_transaction() as session:
        return str(session["csrf_token"])


def log_in(client: Any, services: Any, password: str = TEST_PASSWORD) -> Any:
    """Log in through the real form (setting the password first if none is set)."""
    if not services.web_auth.has_password():
        services.web_auth.passwords.set_password(password)
    response = client.post(
        "/login",
        data={
            "email": services.user_email,
            "password": password,
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def logged_in_client(services: Any, **config: Any) -> Any:
    client = make_app(services, **config).test_client()
    log_in(client, services)
    return client


def post(client: Any, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """A form post with the session's CSRF token, as the pages send it."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client)}, **kwargs)


def wait_for_link(services: Any, job_id: str, timeout: float = 30) -> Any:
    """Advance a Plaid link until it finishes, moving the services' injected clock between
    polls (a poll is claimed per interval of that clock) instead of sleeping."""
    return services.plaid_link.wait_for_job(
        job_id, timeout, sleep=lambda seconds: services.clock.advance(seconds=seconds)
    )
