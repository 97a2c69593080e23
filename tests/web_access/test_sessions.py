"""Sessions that end, and a login brake that cannot be raced: both in the database.

Every case runs on SQLite and on Postgres: the state lives in the database, so any
worker on any host sees the same session and the same count of attempts.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.models import LoginAttempt, WebSession
from services.web_access.brake import TooManyLoginAttempts
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import TEST_PASSWORD, csrf_token, log_in, make_app

WRONG = "not the password at all"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    built.web_auth.passwords.set_password(TEST_PASSWORD)
    yield built
    built.close()


def session_cookie(client: Any) -> str:
    cookie = client.get_cookie("brokerage_hub_session")
    assert cookie is not None
    return str(cookie.value)


def with_cookie(app: Any, value: str) -> Any:
    """A fresh browser that replays a copied session cookie."""
    other = app.test_client()
    other.set_cookie("brokerage_hub_session", value)
    return other


# --- sessions that end -------------------------------------------------------------------------


def test_an_old_cookie_is_refused_after_logout(hub: Any) -> None:
    app = make_app(hub)
    client = app.test_client()
    log_in(client, hub)
    copied = session_cookie(client)
    token = csrf_token(client)
    assert with_cookie(app, copied).get("/api/positions?format=summary").status_code == 200
    client.post("/logout", data={"csrf_token": token})

    replay = with_cookie(app, copied)
    assert replay.get("/api/positions?format=summary").status_code == 401
    # Its CSRF token opens nothing either: the session behind it is gone.
    refused = replay.post("/positions/refresh", data={"provider": "plaid", "csrf_token": token})
    assert refused.status_code in (302, 303) and "/login" in refused.headers["Location"]


def test_a_new_password_ends_every_session(hub: Any) -> None:
    app = make_app(hub)
    first, second = app.test_client(), app.test_client()
    log_in(first, hub)
    log_in(second, hub)
    result = app.test_cli_runner().invoke(
        args=["set-password"], env={"BROKERAGE_HUB_NEW_PASSWORD": "a brand new long password"}
    )
    assert result.exit_code == 0, result.output
    assert first.get("/api/positions?format=summary").status_code == 401
    assert second.get("/api/positions?format=summary").status_code == 401
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(WebSession)).scalar() == 0


def test_a_session_ends_when_idle_too_long(hub: Any, clock: FakeClock) -> None:
    client = make_app(hub).test_client()
    log_in(client, hub)
    clock.advance(minutes=hub.settings.session_idle_minutes - 1)
    assert client.get("/api/positions?format=summary").status_code == 200
    clock.advance(minutes=hub.settings.session_idle_minutes)
    assert client.get("/api/positions?format=summary").status_code == 401


def test_a_session_in_use_still_ends_at_its_absolute_lifetime(hub: Any, clock: FakeClock) -> None:
    client = make_app(hub).test_client()
    log_in(client, hub)
    lifetime = timedelta(hours=hub.settings.session_max_hours)
    used_for = timedelta()
    step = timedelta(minutes=hub.settings.session_idle_minutes // 2)
    while used_for + step < lifetime:
        clock.now += step
        used_for += step
        assert client.get("/api/positions?format=summary").status_code == 200
    clock.now += step
    assert client.get("/api/positions?format=summary").status_code == 401


def test_logging_in_gives_a_new_session_id_and_the_cookie_is_not_reissued_on_use(hub: Any) -> None:
    app = make_app(hub)
    client = app.test_client()
    log_in(client, hub)
    first = session_cookie(client)
    log_in(client, hub)  # logging in again, from the same browser
    assert session_cookie(client) != first
    assert with_cookie(app, first).get("/api/positions?format=summary").status_code == 401
    reading = client.get("/api/positions?format=summary")
    assert reading.status_code == 200
    assert "Set-Cookie" not in reading.headers


def test_the_database_holds_only_a_hash_of_the_session_id(hub: Any) -> None:
    client = make_app(hub).test_client()
    log_in(client, hub)
    with client.session_transaction() as session:
        session_id = session["sid"]
    with hub.engine.connect() as conn:
        stored = conn.execute(select(WebSession.session_hash)).scalars().all()
    assert len(stored) == 1 and session_id not in stored[0] and len(stored[0]) == 64


# --- the login brake --------------------------------------------------------------------------


def count_password_checks(hub: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    checks: list[int] = []
    real = hub.web_auth.passwords.verify

    def counted(email: str, password: str) -> bool:
        checks.append(1)
        return real(email, password)

    monkeypatch.setattr(hub.web_auth.passwords, "verify", counted)
    return checks


def test_sixty_parallel_wrong_passwords_from_one_address_check_at_most_five(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = count_password_checks(hub, monkeypatch)
    start = threading.Barrier(60)
    outcomes: list[str] = []

    def guess() -> None:
        start.wait()
        try:
            hub.web_auth.login(hub.user_email, WRONG, client="203.0.113.9")
            outcomes.append("checked")
        except TooManyLoginAttempts:
            outcomes.append("braked")

    threads = [threading.Thread(target=guess) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 60
    assert len(checks) == outcomes.count("checked") <= hub.web_auth.brake.limits.per_client
    assert outcomes.count("braked") >= 60 - hub.web_auth.brake.limits.per_client


def test_the_account_limit_holds_when_guesses_come_from_many_addresses(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = count_password_checks(hub, monkeypatch)
    limits = hub.web_auth.brake.limits
    for n in range(limits.per_account + 10):
        with contextlib.suppress(TooManyLoginAttempts):
            hub.web_auth.login(hub.user_email, WRONG, client=f"198.51.100.{n}")
    assert len(checks) == limits.per_account
    # An unknown device is braked too, with the right password (no exemptions)...
    with pytest.raises(TooManyLoginAttempts):
        hub.web_auth.login(hub.user_email, TEST_PASSWORD, client="192.0.2.1")
    # ...and gets back in through the server's CLI.
    cleared = make_app(hub).test_cli_runner().invoke(args=["clear-login-brake"])
    assert cleared.exit_code == 0, cleared.output
    assert hub.web_auth.login(hub.user_email, TEST_PASSWORD, client="192.0.2.1") is not None


def test_the_brake_lifts_when_the_window_has_passed(hub: Any, clock: FakeClock) -> None:
    limits = hub.web_auth.brake.limits
    for _ in range(limits.per_client):
        assert hub.web_auth.login(hub.user_email, WRONG, client="203.0.113.5") is None
    with pytest.raises(TooManyLoginAttempts) as braked:
        hub.web_auth.login(hub.user_email, TEST_PASSWORD, client="203.0.113.5")
    assert 0 < braked.value.retry_after_seconds <= limits.window.total_seconds()
    clock.now += limits.window
    assert hub.web_auth.login(hub.user_email, TEST_PASSWORD, client="203.0.113.5") is not None


def test_a_success_releases_only_its_own_reservation(hub: Any) -> None:
    limits = hub.web_auth.brake.limits
    for _ in range(limits.per_client - 1):
        hub.web_auth.login(hub.user_email, WRONG, client="203.0.113.7")
    assert hub.web_auth.login(hub.user_email, TEST_PASSWORD, client="203.0.113.7") is not None
    # The earlier failures still count: one more wrong guess, then the brake.
    assert hub.web_auth.login(hub.user_email, WRONG, client="203.0.113.7") is None
    with pytest.raises(TooManyLoginAttempts):
        hub.web_auth.login(hub.user_email, WRONG, client="203.0.113.7")
    with hub.engine.connect() as conn:
        outcomes = conn.execute(select(LoginAttempt.outcome)).scalars().all()
    assert outcomes == ["failed"] * limits.per_client


def test_a_braked_login_page_says_when_to_try_again(hub: Any) -> None:
    client = make_app(hub).test_client()
    for _ in range(hub.web_auth.brake.limits.per_client):
        client.post(
            "/login",
            data={"email": hub.user_email, "password": WRONG, "csrf_token": csrf_token(client)},
        )
    braked = client.post(
        "/login",
        data={"email": hub.user_email, "password": TEST_PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert braked.status_code == 429
    assert int(braked.headers["Retry-After"]) > 0
    assert "try again in" in braked.get_data(as_text=True)
