"""The web app is locked: login on every route, CSRF on every post, rate-limited guessing,
strict cookies and headers, and 400s in the JSON error shape for bad input."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from werkzeug.routing import Rule

from tests.web_fixtures import (
    TEST_PASSWORD,
    csrf_token,
    log_in,
    logged_in_client,
    make_app,
    post,
)

# State-changing endpoints that take no CSRF token: the providers sign their deliveries
# (an unsigned or forged one gets 401; see test_webhooks.py). A security decision too.
SIGNED_INSTEAD = {"webhooks.plaid_webhook", "webhooks.snaptrade_webhook"}

# The only endpoints reachable without logging in. Adding one here is a security decision.
PUBLIC_ENDPOINTS = {
    "health.healthz",
    "health.readyz",
    "auth.login",
    "auth.login_submit",
    "static",
    # The providers sign their deliveries instead of logging in (401 when they do not).
    "webhooks.plaid_webhook",
    "webhooks.snaptrade_webhook",
}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
PAGES = ("/", "/connections", "/plaid/", "/snaptrade/", "/trades", "/costs")


@pytest.fixture
def app(services: Any) -> Any:
    return make_app(services)


def _url_for_rule(rule: Rule) -> str:
    """A concrete URL for a rule, with a placeholder in every variable part."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "placeholder", rule.rule)


def _routes(app: Any) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every route the app serves."""
    return [
        (rule.endpoint, method, _url_for_rule(rule))
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]


def _assert_refused_for_login(response: Any, url: str) -> None:
    if url.startswith("/api/"):
        assert response.status_code == 401, url
        assert response.get_json()["error"]["type"] == "unauthorized"
    else:
        assert response.status_code in (302, 303), (url, response.status_code)
        assert response.headers["Location"].startswith("/login"), url


# --- login is required everywhere --------------------------------------------------------


def test_only_the_health_probe_login_and_static_files_are_public(app: Any) -> None:
    public = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint == "static"
        or getattr(app.view_functions[rule.endpoint], "login_exempt", False)
    }
    assert public == PUBLIC_ENDPOINTS


def test_every_route_refuses_a_visitor_who_is_not_logged_in(app: Any, emulator: Any) -> None:
    client = app.test_client()
    token = csrf_token(client)  # a valid CSRF token must not stand in for a login
    checked = 0
    for endpoint, method, url in _routes(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        response = client.open(url, method=method, data={"csrf_token": token})
        _assert_refused_for_login(response, url)
        checked += 1
    assert checked >= 10
    assert emulator.controls.calls() == 0


def test_unknown_paths_also_need_a_login(app: Any) -> None:
    client = app.test_client()
    _assert_refused_for_login(client.get("/api/nothing"), "/api/nothing")
    _assert_refused_for_login(client.get("/nothing"), "/nothing")


def test_public_routes_answer_without_a_login(app: Any) -> None:
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["ready"] is True
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_a_login_redirect_returns_to_the_page_asked_for(services: Any, app: Any) -> None:
    client = app.test_client()
    response = client.get("/snaptrade/")
    assert response.headers["Location"] == "/login?next=/snaptrade/"
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    answer = client.post(
        "/login",
        data={
            "email": services.user_email,
            "password": TEST_PASSWORD,
            "next": "/snaptrade/",
            "csrf_token": csrf_token(client),
        },
    )
    assert answer.headers["Location"] == "/snaptrade/"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", ""])
def test_login_never_redirects_to_another_site(services: Any, app: Any, target: str) -> None:
    client = app.test_client()
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    answer = client.post(
        "/login",
        data={
            "email": services.user_email,
            "password": TEST_PASSWORD,
            "next": target,
            "csrf_token": csrf_token(client),
        },
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/"


def test_a_wrong_password_or_email_does_not_log_in(services: Any, app: Any) -> None:
    client = app.test_client()
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    for email, password in (
        (services.user_email, "wrong password here"),
        ("someone@else.example", TEST_PASSWORD),
    ):
        response = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(client)},
        )
        assert response.status_code == 401
        assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_without_a_password_nobody_can_log_in_and_the_page_says_how_to_set_one(
    services: Any, app: Any
) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "flask --app app set-password" in page
    response = client.post(
        "/login",
        data={"email": services.user_email, "password": "", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 401


def test_log_out_ends_the_session(services: Any) -> None:
    client = logged_in_client(services)
    assert client.get("/").status_code == 200
    assert post(client, "/logout").status_code == 303
    _assert_refused_for_login(client.get("/"), "/")
    _assert_refused_for_login(client.get("/api/positions"), "/api/positions")


def test_only_a_hash_of_the_password_is_stored(services: Any) -> None:
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    stored = services.secret_store.get(f"app/password_hash/{services.user_email}")
    assert TEST_PASSWORD not in stored
    assert stored.startswith("scrypt:")


def test_a_short_password_is_refused(services: Any) -> None:
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        services.web_auth.passwords.set_password("short")
    assert not services.web_auth.has_password()


# --- guessing is braked --------------------------------------------------------------------


def test_failed_logins_are_rate_limited_until_the_window_passes(
    services: Any, app: Any, clock: Any
) -> None:
    client = app.test_client()
    services.web_auth.passwords.set_password(TEST_PASSWORD)

    def attempt(password: str) -> Any:
        return client.post(
            "/login",
            data={
                "email": services.user_email,
                "password": password,
                "csrf_token": csrf_token(client),
            },
        )

    for _ in range(5):
        assert attempt("not the password!").status_code == 401
    braked = attempt(TEST_PASSWORD)  # even the right password waits
    assert braked.status_code == 429
    assert int(braked.headers["Retry-After"]) > 0
    assert "too many failed logins" in braked.get_data(as_text=True)
    clock.advance(minutes=16)
    assert attempt(TEST_PASSWORD).status_code == 303


def test_the_overall_brake_holds_when_guesses_come_from_many_addresses(
    services: Any, app: Any
) -> None:
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    for index in range(20):
        client = app.test_client()
        client.post(
            "/login",
            data={"email": "x@y.z", "password": "guess", "csrf_token": csrf_token(client)},
            environ_base={"REMOTE_ADDR": f"10.0.0.{index}"},
        )
    client = app.test_client()
    answer = client.post(
        "/login",
        data={
            "email": services.user_email,
            "password": TEST_PASSWORD,
            "csrf_token": csrf_token(client),
        },
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    assert answer.status_code == 429


# --- CSRF ------------------------------------------------------------------------------------


def test_every_state_changing_route_needs_the_csrf_token(
    services: Any, emulator: Any, clock: Any
) -> None:
    client = logged_in_client(services)
    app = client.application
    emulator.controls.reset_counts()
    checked = 0
    for endpoint, method, url in _routes(app):
        if method not in STATE_CHANGING:
            continue
        if endpoint in SIGNED_INSTEAD:
            for data in ({}, {"csrf_token": "forged-token"}):
                assert client.open(url, method=method, data=data).status_code == 401, url
            continue
        for data in ({}, {"csrf_token": "forged-token"}):
            response = client.open(
                url, method=method, data=data, headers={"Accept": "application/json"}
            )
            assert response.status_code == 403, (url, response.status_code)
            assert response.get_json()["error"]["type"] == "csrf_failed"
        checked += 1
    assert checked >= 6
    assert emulator.controls.calls() == 0
    # ... and the session survived: the forged logout did not log out.
    assert client.get("/").status_code == 200


def test_the_csrf_token_is_accepted_in_a_header_too(services: Any) -> None:
    client = logged_in_client(services)
    response = client.post(
        "/positions/refresh",
        data={"provider": "robinhood"},
        headers={"X-CSRF-Token": csrf_token(client), "Accept": "application/json"},
    )
    assert response.status_code == 400  # past the CSRF check, stopped by validation


def test_a_form_with_an_expired_token_gets_a_readable_page(services: Any) -> None:
    client = logged_in_client(services)
    response = client.post("/positions/refresh", data={"provider": "plaid"})
    assert response.status_code == 403
    assert "Reload the page and try again" in response.get_data(as_text=True)


def test_login_itself_needs_the_csrf_token(services: Any, app: Any) -> None:
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    client = app.test_client()
    response = client.post("/login", data={"email": services.user_email, "password": TEST_PASSWORD})
    assert response.status_code == 403
    assert client.get("/").status_code == 302


def test_logging_in_gives_a_new_csrf_token(services: Any, app: Any) -> None:
    client = app.test_client()
    before = csrf_token(client)
    log_in(client, services)
    assert csrf_token(client) != before


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        ("/positions/refresh", {"provider": "robinhood"}, "refresh_provider"),
        ("/positions/refresh", {}, "refresh_provider"),
        ("/plaid/update", {"institution": "Not A Slug!"}, "institution_slug"),
        ("/snaptrade/connect", {"connection_type": "write"}, "connection_type"),
        ("/snaptrade/connect", {"connection_type": "read", "reconnect": "42"}, "reconnect"),
    ],
)
def test_bad_input_is_a_400_in_the_json_error_shape_and_calls_no_provider(
    services: Any, emulator: Any, path: str, data: dict[str, str], field: str
) -> None:
    client = logged_in_client(services)
    emulator.controls.reset_counts()
    response = post(client, path, data, headers={"Accept": "application/json"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_input"
    assert error["field"] == field
    assert error["message"]
    assert emulator.controls.calls() == 0


def test_an_unknown_plaid_item_for_update_mode_is_a_404(services: Any, emulator: Any) -> None:
    client = logged_in_client(services)
    response = post(client, "/plaid/update", {"institution": "charles-schwab"})
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "not_found"


def test_an_unknown_link_job_is_a_404_in_the_json_error_shape(services: Any) -> None:
    client = logged_in_client(services)
    response = client.get("/api/plaid/link/no-such-job")
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "not_found"


# --- cookies and headers -------------------------------------------------------------------


def _session_cookie(response: Any) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if "brokerage_hub_session" in c]
    assert cookies, response.headers
    return cookies[-1]


def test_the_session_cookie_is_httponly_and_samesite_lax(services: Any, app: Any) -> None:
    client = app.test_client()
    cookie = _session_cookie(client.get("/login"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback


def test_the_session_cookie_is_secure_over_https(services: Any, app: Any) -> None:
    client = app.test_client()
    response = client.get("/login", base_url="https://hub.example")
    assert "Secure" in _session_cookie(response)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_the_security_headers_and_load_nothing_from_elsewhere(
    services: Any, path: str
) -> None:
    client = logged_in_client(services)
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    # No inline script, no asset from another origin (it works offline).
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=\"(?:https?:)?//", html)
    assert " style=" not in html


def test_the_login_page_also_carries_the_headers(app: Any) -> None:
    response = app.test_client().get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# --- the secret key and the CLI ------------------------------------------------------------


def test_the_secret_key_is_made_once_and_kept_private(services: Any, tmp_path: Path) -> None:
    first = make_app(services).secret_key
    second = make_app(services).secret_key
    assert first == second and len(str(first)) >= 32
    key_file = services.settings.instance_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_configured_secret_key_is_used(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    from tests.conftest import make_services

    key = "k" * 40
    services = make_services(tmp_path, sqlite_url, emulator, clock, SECRET_KEY=key)
    assert make_app(services).secret_key == key
    assert not (services.settings.instance_dir / "secret_key").exists()


def test_a_short_secret_key_stops_start_up_without_echoing_it() -> None:
    from core.errors import ConfigError
    from settings import load_settings

    with pytest.raises(ConfigError) as caught:
        load_settings({"SECRET_KEY": "tooshort-secret"}, use_dotenv=False)
    assert "SECRET_KEY is too short" in caught.value.message
    assert "tooshort-secret" not in caught.value.message


def test_set_password_cli_stores_a_hash_that_logs_in(services: Any) -> None:
    app = make_app(services)
    result = app.test_cli_runner().invoke(
        args=["set-password"], input=f"{TEST_PASSWORD}\n{TEST_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert f"password set for {services.user_email}" in result.output
    assert TEST_PASSWORD not in result.output.split("\n")[-2]
    assert services.web_auth.passwords.verify(services.user_email, TEST_PASSWORD)


def test_set_password_cli_refuses_a_short_password_without_a_traceback(services: Any) -> None:
    result = make_app(services).test_cli_runner().invoke(args=["set-password"], input="abc\nabc\n")
    assert result.exit_code == 1
    assert "at least 12 characters" in result.output
    assert "Traceback" not in result.output


def test_demo_login_prints_the_same_working_password_each_time(services: Any) -> None:
    app = make_app(services)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo-login"])
    second = runner.invoke(args=["demo-login"])
    assert first.exit_code == 0, first.output
    password = first.output.strip().rsplit(" / ", 1)[1]
    assert second.output == first.output
    client = app.test_client()
    answer = client.post(
        "/login",
        data={
            "email": services.user_email,
            "password": password,
            "csrf_token": csrf_token(client),
        },
    )
    assert answer.status_code == 303
    # Once the person sets their own password, the demo one is neither valid nor shown.
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    assert password not in runner.invoke(args=["demo-login"]).output


def test_demo_login_makes_no_password_outside_emulator_mode(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    from tests.conftest import make_services

    services = make_services(
        tmp_path,
        sqlite_url,
        emulator,
        clock,
        PLAID_ENV="sandbox",
        PLAID_CLIENT_ID="cid",
        PLAID_SECRET="secret-value",
    )
    result = make_app(services).test_cli_runner().invoke(args=["demo-login"])
    assert result.exit_code == 0
    assert "set-password" in result.output
    assert not services.web_auth.has_password()
