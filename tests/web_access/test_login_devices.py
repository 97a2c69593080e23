"""Being locked out is not the owner's problem (OWASP's device cookies).

A browser that has logged in keeps a signed device cookie and with it its own budget of
attempts: guesses from any number of addresses cannot lock it out, while unknown devices
still meet the per-address and per-account limits. ``confirm-trade`` at the terminal
has its own budget too. Every case runs on SQLite and on Postgres: the attempts are
counted in the database that every worker shares.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import cli.trades
from services.models import LoginAttempt
from services.web_access.brake import TooManyLoginAttempts
from tests.conftest import FakeClock, make_services
from tests.trading.test_order_confirmation import PLACE, sell_preview
from tests.web_fixtures import TEST_PASSWORD, csrf_token, log_in, make_app

WRONG = "not the password at all"
DEVICE_COOKIE = "brokerage_hub_device"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    built.web_auth.passwords.set_password(TEST_PASSWORD)
    yield built
    built.close()


@pytest.fixture
def app(hub: Any) -> Any:
    return make_app(hub)


def attempt(client: Any, email: str, password: str, address: str = "192.0.2.10") -> Any:
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": address},
    )


def device_cookie(client: Any) -> str:
    cookie = client.get_cookie(DEVICE_COOKIE, path="/login")
    assert cookie is not None, "no device cookie after logging in"
    return str(cookie.value)


def device_set_cookie(answer: Any) -> str:
    [header] = [h for h in answer.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE)]
    return str(header)


def browser_with(app: Any, value: str) -> Any:
    browser = app.test_client()
    browser.set_cookie(DEVICE_COOKIE, value, path="/login")
    return browser


def owners_browser(app: Any, hub: Any) -> Any:
    """A browser that has logged in once (and so keeps a device cookie), then logged out."""
    browser = app.test_client()
    log_in(browser, hub)
    device_cookie(browser)
    browser.post("/logout", data={"csrf_token": csrf_token(browser)})
    return browser


def flood(app: Any, hub: Any) -> None:
    """Wrong passwords from as many addresses as the account allows unknown devices."""
    for n in range(hub.web_auth.brake.limits.per_account):
        assert (
            attempt(app.test_client(), hub.user_email, WRONG, f"198.51.100.{n}").status_code == 401
        )


def test_the_owners_browser_logs_in_after_twenty_guesses_from_twenty_addresses(
    hub: Any, app: Any
) -> None:
    owner = owners_browser(app, hub)
    flood(app, hub)
    # An unknown device is still held back by the account's limit, the right password too...
    stranger = attempt(app.test_client(), hub.user_email, TEST_PASSWORD, "192.0.2.99")
    assert stranger.status_code == 429
    # ...but the browser that logged in before is not, even from an address guessed from.
    assert attempt(owner, hub.user_email, TEST_PASSWORD, "198.51.100.1").status_code == 303
    assert owner.get("/api/positions?format=summary").status_code == 200


def test_a_forged_altered_or_foreign_device_cookie_counts_as_an_unknown_device(
    hub: Any, app: Any
) -> None:
    genuine = device_cookie(owners_browser(app, hub))
    body, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    other_nonce = {**claims, "n": "A" * 22}
    altered_body = base64.urlsafe_b64encode(json.dumps(other_nonce).encode()).decode().rstrip("=")
    signed_with_another_key = type(hub.web_auth.devices)("another key of good length", hub.clock)
    forged = [
        f"{body}.{signature[:-2]}AA",  # a changed signature
        f"{altered_body}.{signature}",  # another nonce under the old signature
        signed_with_another_key.issue(hub.user_email),
        hub.web_auth.devices.issue("somebody.else@example.com"),  # for another account
        "not.base64!",
        "x" * 2000,  # longer than any cookie we issue
    ]
    flood(app, hub)
    for value in forged:
        answer = attempt(browser_with(app, value), hub.user_email, TEST_PASSWORD)
        assert answer.status_code == 429, value
    # The genuine cookie is for this account only: typed with another email it is unknown.
    assert attempt(browser_with(app, genuine), "x@y.z", TEST_PASSWORD).status_code == 429
    assert attempt(browser_with(app, genuine), hub.user_email, TEST_PASSWORD).status_code == 303


def test_a_devices_own_failures_lock_that_device_only(hub: Any, app: Any) -> None:
    guesser, owner = owners_browser(app, hub), owners_browser(app, hub)
    for _ in range(hub.web_auth.brake.limits.per_device):
        assert attempt(guesser, hub.user_email, WRONG).status_code == 401
    braked = attempt(guesser, hub.user_email, TEST_PASSWORD)
    assert braked.status_code == 429 and int(braked.headers["Retry-After"]) > 0
    # The same address: another known device and an unknown one still get in.
    assert attempt(owner, hub.user_email, TEST_PASSWORD).status_code == 303
    assert attempt(app.test_client(), hub.user_email, TEST_PASSWORD).status_code == 303


def test_a_device_cookie_expires_after_its_lifetime(hub: Any, app: Any, clock: FakeClock) -> None:
    owner = owners_browser(app, hub)
    clock.advance(seconds=hub.web_auth.devices.lifetime.total_seconds() + 1)
    flood(app, hub)
    assert attempt(owner, hub.user_email, TEST_PASSWORD).status_code == 429


def test_the_device_cookie_is_httponly_lax_long_lived_and_holds_no_secret(
    hub: Any, app: Any
) -> None:
    browser = app.test_client()
    header = device_set_cookie(log_in(browser, hub))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/login" in header
    assert "Secure" not in header  # plain http on loopback
    assert "Max-Age=31536000" in header
    value = device_cookie(browser)
    with browser.session_transaction() as session:
        session_id = session["sid"]
    assert TEST_PASSWORD not in value and session_id not in value
    # Secure over HTTPS, and whenever PUBLIC_BASE_URL is https (the session cookie's rule).
    over_https = app.test_client()
    answer = over_https.post(
        "/login",
        data={
            "email": hub.user_email,
            "password": TEST_PASSWORD,
            "csrf_token": csrf_token(over_https),
        },
        base_url="https://localhost",
    )
    assert answer.status_code == 303
    assert "Secure" in device_set_cookie(answer)
    configured = make_app(hub, SESSION_COOKIE_SECURE=True).test_client()
    assert "Secure" in device_set_cookie(log_in(configured, hub))


def test_confirm_trade_at_the_terminal_works_after_a_web_flood(
    hub: Any, app: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    flood(app, hub)
    assert attempt(app.test_client(), hub.user_email, TEST_PASSWORD).status_code == 429
    monkeypatch.setattr(cli.trades, "person_at_terminal", lambda: True)
    preview_id = sell_preview(hub)
    result = app.test_cli_runner().invoke(
        args=["confirm-trade", preview_id], input=f"{TEST_PASSWORD}\ny\n"
    )
    assert result.exit_code == 0, result.output
    assert emulator.controls.calls(PLACE) == 1


def test_wrong_passwords_at_the_terminal_are_limited_apart_from_the_web(hub: Any, app: Any) -> None:
    auth = hub.web_auth
    for _ in range(auth.brake.limits.per_terminal):
        assert auth.is_the_person(WRONG, terminal="1000") is False
    with pytest.raises(TooManyLoginAttempts):
        auth.is_the_person(TEST_PASSWORD, terminal="1000")
    # Another terminal user, and the web, are not held back by these failures.
    assert auth.is_the_person(TEST_PASSWORD, terminal="1001") is True
    assert attempt(app.test_client(), hub.user_email, TEST_PASSWORD).status_code == 303


def test_clear_login_brake_lets_a_locked_device_and_terminal_in_again(hub: Any, app: Any) -> None:
    owner = owners_browser(app, hub)
    for _ in range(hub.web_auth.brake.limits.per_device + 1):
        attempt(owner, hub.user_email, WRONG)
    for _ in range(hub.web_auth.brake.limits.per_terminal + 1):
        with contextlib.suppress(TooManyLoginAttempts):
            hub.web_auth.is_the_person(WRONG, terminal="1000")
    assert attempt(owner, hub.user_email, TEST_PASSWORD).status_code == 429
    cleared = app.test_cli_runner().invoke(args=["clear-login-brake"])
    assert cleared.exit_code == 0, cleared.output
    assert attempt(owner, hub.user_email, TEST_PASSWORD).status_code == 303
    assert hub.web_auth.is_the_person(TEST_PASSWORD, terminal="1000") is True


def test_device_and_terminal_attempts_are_forgotten_after_the_window(
    hub: Any, app: Any, clock: FakeClock
) -> None:
    owner = owners_browser(app, hub)
    assert attempt(owner, hub.user_email, WRONG).status_code == 401
    assert hub.web_auth.is_the_person(WRONG, terminal="1000") is False
    with hub.engine.connect() as conn:
        clients = sorted(conn.execute(select(LoginAttempt.client)).scalars())
    assert clients[0] == "cli:1000" and clients[1].startswith("device:"), clients
    clock.advance(seconds=hub.web_auth.brake.limits.window.total_seconds() + 1)
    assert hub.web_auth.brake.forget_old() == 2
