"""Safe behind a TLS proxy: Secure cookies and HSTS with an https PUBLIC_BASE_URL, provider
callbacks built from it (never from the Host header), and only trusted proxies believed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.models import LoginAttempt
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import TEST_PASSWORD, csrf_token, log_in, make_app, post

PUBLIC = "https://hub.example.com"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Any:
    built = make_services(tmp_path, database_url, emulator, clock, PUBLIC_BASE_URL=PUBLIC)
    yield built
    built.close()


def recorded_bodies(emulator: Any, endpoint: str) -> list[Any]:
    return [request.body for request in emulator.controls.requests(endpoint)]


def test_an_https_base_url_makes_the_cookie_secure_and_sends_hsts(hub: Any) -> None:
    client = make_app(hub).test_client()
    response = client.get("/login")  # plain http between the proxy and the app
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_plain_http_on_the_embedded_default_sends_no_hsts(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> None:
    local = make_services(tmp_path, database_url, emulator, clock)
    try:
        response = make_app(local).test_client().get("/login")
        assert "Secure" not in response.headers["Set-Cookie"]
        assert "Strict-Transport-Security" not in response.headers
    finally:
        local.close()


def test_a_forged_host_header_changes_no_url_handed_to_a_provider(hub: Any, emulator: Any) -> None:
    client = make_app(hub).test_client()
    log_in(client, hub)
    # The logged-in browser's cookie goes along to the forged host, as it would to a proxy
    # that passes any Host header through.
    cookie = client.get_cookie("brokerage_hub_session")
    assert cookie is not None
    client.set_cookie("brokerage_hub_session", cookie.value, domain="evil.example")
    forged = {"Host": "evil.example"}
    snap = post(client, "/snaptrade/connect", {"connection_type": "read"}, headers=forged)
    assert snap.status_code == 303
    plaid = post(client, "/plaid/link", headers=forged)
    assert plaid.status_code == 303
    (snap_body,) = recorded_bodies(emulator, "snaptrade /snapTrade/login")
    (plaid_body,) = recorded_bodies(emulator, "plaid /link/token/create")
    assert snap_body["customRedirect"].startswith(f"{PUBLIC}/snaptrade/connected/")
    redirect = plaid_body["hosted_link"]["completion_redirect_uri"]
    assert redirect.startswith(f"{PUBLIC}/plaid/link/")
    assert "evil.example" not in str(snap_body) + str(plaid_body)


def attempts_by_client(hub: Any) -> list[str]:
    from sqlalchemy import select

    with hub.engine.connect() as conn:
        return list(conn.execute(select(LoginAttempt.client)).scalars())


def wrong_login(client: Any, hub: Any, **headers: str) -> Any:
    return client.post(
        "/login",
        data={
            "email": hub.user_email,
            "password": "wrong wrong wrong",
            "csrf_token": csrf_token(client),
        },
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.0.0.2"},  # the proxy
    )


def test_without_trusted_proxies_a_forwarded_address_is_ignored(hub: Any) -> None:
    hub.web_auth.passwords.set_password(TEST_PASSWORD)
    client = make_app(hub).test_client()
    wrong_login(client, hub, **{"X-Forwarded-For": "198.51.100.77"})
    assert attempts_by_client(hub) == ["10.0.0.2"]


def test_a_trusted_proxy_names_the_client_and_the_scheme(
    tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock
) -> None:
    proxied = make_services(
        tmp_path, database_url, emulator, clock, PUBLIC_BASE_URL=PUBLIC, TRUSTED_PROXIES="1"
    )
    try:
        proxied.web_auth.passwords.set_password(TEST_PASSWORD)
        client = make_app(proxied).test_client()
        answer = wrong_login(
            client,
            proxied,
            **{"X-Forwarded-For": "203.0.113.50, 198.51.100.77", "X-Forwarded-Proto": "https"},
        )
        # One trusted proxy: only the address it added counts, not what the client claimed.
        assert answer.status_code == 401
        assert attempts_by_client(proxied) == ["198.51.100.77"]
        page = (
            make_app(proxied)
            .test_client()
            .get(
                "/login",
                headers={"X-Forwarded-Proto": "https"},
                environ_base={"REMOTE_ADDR": "10.0.0.2"},
            )
        )
        assert "Secure" in page.headers["Set-Cookie"]
    finally:
        proxied.close()


@pytest.mark.parametrize(
    "target",
    ["/\r\nSet-Cookie: x=1", "/%0d%0aLocation: https://evil.example", "/" + "a" * 5000, "/\x00"],
)
def test_a_bad_next_value_never_causes_an_error(hub: Any, target: str) -> None:
    hub.web_auth.passwords.set_password(TEST_PASSWORD)
    client = make_app(hub).test_client()
    assert client.get("/login", query_string={"next": target}).status_code == 200
    answer = client.post(
        "/login",
        data={
            "email": hub.user_email,
            "password": TEST_PASSWORD,
            "csrf_token": csrf_token(client),
            "next": target,
        },
    )
    assert answer.status_code == 303
    assert "\r" not in answer.headers["Location"] and "\n" not in answer.headers["Location"]
    location = answer.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
