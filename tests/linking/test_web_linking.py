"""Linking through the web app, against the emulator over real HTTP: Plaid Hosted Link as a
background job (new Item, refused duplicate, update mode), the SnapTrade portal (register,
connect, reconnect, upgrade), and the positions and connections pages around them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox import data, demo
from tests.conftest import make_services
from tests.web_fixtures import logged_in_client, post, wait_for_link

NEW_USER = "new.person@example.com"
FAST_POLL = {"PLAID_LINK_POLL_SECONDS": 0.02}
JOB_WAIT_SECONDS = 15


@pytest.fixture
def new_user_services(tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any) -> Any:
    """A user with nothing linked yet (the demo user has seeded Items and connections)."""
    built = make_services(tmp_path, sqlite_url, emulator, clock, DEFAULT_USER_EMAIL=NEW_USER)
    yield built
    built.close()


def _job_id(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.fullmatch(r"/plaid/link/([\w-]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def _link_token(client: Any, job_id: str) -> str:
    status = client.get(f"/api/plaid/link/{job_id}").get_json()
    return urlsplit(status["hosted_link_url"]).path.rsplit("/", 1)[1]


def _finish_plaid_link(client: Any, services: Any, emulator: Any, job_id: str, slug: str) -> Any:
    emulator.controls.complete_link(_link_token(client, job_id), slug)
    job = wait_for_link(services, job_id, JOB_WAIT_SECONDS)
    assert job.finished, job
    return client.get(f"/api/plaid/link/{job_id}").get_json()


def _flow_id(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.fullmatch(r"/snaptrade/connect/([\w-]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def _portal_session(client: Any, flow_id: str) -> str:
    page = client.get(f"/snaptrade/connect/{flow_id}").get_data(as_text=True)
    portal_url = re.search(r'id="open-snaptrade-portal" href="([^"]+)"', page)
    assert portal_url, page
    return urlsplit(portal_url.group(1)).path.rsplit("/", 1)[1]


# --- Plaid ------------------------------------------------------------------------------


def test_linking_a_new_plaid_institution_stores_its_token_and_shows_its_positions(
    new_user_services: Any, emulator: Any
) -> None:
    services = new_user_services
    client = logged_in_client(services, **FAST_POLL)
    assert "Merrill Lynch" not in client.get("/").get_data(as_text=True)

    job_id = _job_id(post(client, "/plaid/link"))
    page = client.get(f"/plaid/link/{job_id}").get_data(as_text=True)
    assert 'id="open-plaid-link"' in page and "/plaid/hosted-link/link-sandbox-" in page
    assert client.get(f"/api/plaid/link/{job_id}").get_json()["status"] == "waiting"

    status = _finish_plaid_link(client, services, emulator, job_id, "merrill-lynch")

    assert status["status"] == "done", status
    assert status["institution"] == "Merrill Lynch"
    secret_name = f"plaid/access_token/{NEW_USER}/merrill-lynch"
    assert services.secret_store.get(secret_name).startswith("access-sandbox-")
    state = services.connections.get(NEW_USER, "plaid", "merrill-lynch")
    assert state is not None and state.status == "ok"
    positions = client.get("/").get_data(as_text=True)
    assert "Merrill Lynch" in positions and "Merrill Cash Management Account" in positions
    # The token never reaches the page or the status JSON.
    token = services.secret_store.get(secret_name)
    assert token not in positions
    assert token not in client.get(f"/api/plaid/link/{job_id}").get_data(as_text=True)


def test_plaid_hosted_link_brings_the_person_back_to_the_progress_page(
    new_user_services: Any, emulator: Any
) -> None:
    client = logged_in_client(new_user_services, **FAST_POLL)
    job_id = _job_id(post(client, "/plaid/link"))
    link_token = _link_token(client, job_id)
    state = emulator.controls.plaid_link_token(link_token)
    assert state is not None
    # Built from PUBLIC_BASE_URL (the embedded default's), never from the request's host.
    assert state["completion_redirect_uri"] == f"http://127.0.0.1:5000/plaid/link/{job_id}"
    assert state["products"] == ["investments"]


def test_linking_an_institution_that_already_has_an_item_is_refused_with_update_mode(
    services: Any, emulator: Any
) -> None:
    client = logged_in_client(services, **FAST_POLL)
    job_id = _job_id(post(client, "/plaid/link"))
    status = _finish_plaid_link(client, services, emulator, job_id, "merrill-lynch")

    assert status["status"] == "duplicate"
    assert "already linked" in status["message"] and "update mode" in status["message"]
    # Refused before the exchange: no second access token (and no second bill) exists.
    assert emulator.controls.calls("plaid /item/public_token/exchange") == 0
    token_name = f"plaid/access_token/{services.user_email}/merrill-lynch"
    assert services.secret_store.get(token_name) == demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
    page = client.get(f"/plaid/link/{job_id}").get_data(as_text=True)
    assert "Use update mode for Merrill Lynch" in page
    assert 'name="institution" value="merrill-lynch"' in page


def test_an_item_that_needs_a_relogin_is_repaired_through_update_mode(
    services: Any, emulator: Any
) -> None:
    client = logged_in_client(services, **FAST_POLL)
    merrill = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
    emulator.controls.fail("plaid /item/get", "ITEM_LOGIN_REQUIRED", subject=merrill)

    page = client.get("/plaid/").get_data(as_text=True)
    assert "Needs re-login" in page and "Log in again" in page
    state = services.connections.get(services.user_email, "plaid", "merrill-lynch")
    assert state is not None and state.status == "login_required"

    job_id = _job_id(post(client, "/plaid/update", {"institution": "merrill-lynch"}))
    link_token = _link_token(client, job_id)
    record = emulator.controls.plaid_link_token(link_token)
    assert record is not None
    assert record["update_access_token"] == merrill  # Link update mode for this Item
    emulator.controls.clear()  # the person logs in again at the institution
    emulator.controls.complete_link(link_token, "merrill-lynch")
    job = wait_for_link(services, job_id, JOB_WAIT_SECONDS)

    assert job.status == "done", job.message
    assert emulator.controls.calls("plaid /item/public_token/exchange") == 0
    assert (
        services.secret_store.get(f"plaid/access_token/{services.user_email}/merrill-lynch")
        == merrill
    )
    state = services.connections.get(services.user_email, "plaid", "merrill-lynch")
    assert state is not None and state.status == "ok"
    assert "Needs re-login" not in client.get("/plaid/").get_data(as_text=True)


def test_a_plaid_link_that_is_never_finished_times_out_and_says_so(
    new_user_services: Any, emulator: Any
) -> None:
    services = new_user_services
    services.plaid_link.timeout_seconds = 0.1
    client = logged_in_client(services, **FAST_POLL)
    job_id = _job_id(post(client, "/plaid/link"))
    job = wait_for_link(services, job_id, JOB_WAIT_SECONDS)
    assert job.status == "failed"
    assert "not completed within" in job.message
    assert services.plaid_link.linked_plaid_slugs() == []


def test_a_plaid_outage_when_starting_link_is_shown_on_the_page(
    services: Any, emulator: Any
) -> None:
    client = logged_in_client(services, **FAST_POLL)
    emulator.controls.fail("plaid /link/token/create", "503")
    response = post(client, "/plaid/link")
    assert response.status_code == 303 and response.headers["Location"] == "/plaid/"
    assert "Plaid Link could not be started" in client.get("/plaid/").get_data(as_text=True)


# --- SnapTrade --------------------------------------------------------------------------


def test_connecting_a_first_brokerage_registers_the_user_and_shows_its_positions(
    new_user_services: Any, emulator: Any
) -> None:
    services = new_user_services
    client = logged_in_client(services)
    flow_id = _flow_id(post(client, "/snaptrade/connect", {"connection_type": "read"}))

    secret = services.secret_store.get(f"snaptrade/user_secret/{NEW_USER}")
    registered = emulator.controls.snaptrade_user(NEW_USER)
    assert registered is not None and registered["user_secret"] == secret
    session = _portal_session(client, flow_id)
    portal = emulator.controls.snaptrade_portal_session(session)
    assert portal is not None and portal["connection_type"] == "read"
    # Built from PUBLIC_BASE_URL (the embedded default's), never from the request's host.
    assert portal["custom_redirect"] == f"http://127.0.0.1:5000/snaptrade/connected/{flow_id}"

    emulator.controls.complete_connection(session, "charles-schwab")
    back = client.get(f"/snaptrade/connected/{flow_id}")
    assert back.status_code == 303 and back.headers["Location"] == "/snaptrade/"

    page = client.get("/snaptrade/").get_data(as_text=True)
    assert "SnapTrade connected Charles Schwab; positions are up to date." in page
    assert "Charles Schwab" in page and "Upgrade to trading" in page
    assert secret not in page
    positions = client.get("/").get_data(as_text=True)
    assert "Charles Schwab" in positions and "Individual Brokerage" in positions
    # The return link works once: a replay does not refresh again.
    calls = emulator.controls.calls()
    assert client.get(f"/snaptrade/connected/{flow_id}").status_code == 303
    assert emulator.controls.calls() == calls


def test_a_read_connection_is_upgraded_to_trade_through_reconnect(
    new_user_services: Any, emulator: Any
) -> None:
    services = new_user_services
    client = logged_in_client(services)
    flow_id = _flow_id(post(client, "/snaptrade/connect", {"connection_type": "read"}))
    auth_id = emulator.controls.complete_connection(
        _portal_session(client, flow_id), "charles-schwab"
    )
    client.get(f"/snaptrade/connected/{flow_id}")

    flow_id = _flow_id(
        post(client, "/snaptrade/connect", {"connection_type": "trade", "reconnect": auth_id})
    )
    session = _portal_session(client, flow_id)
    portal = emulator.controls.snaptrade_portal_session(session)
    assert portal is not None
    assert portal["reconnect"] == auth_id and portal["connection_type"] == "trade"
    assert emulator.controls.complete_connection(session, "charles-schwab") == auth_id
    client.get(f"/snaptrade/connected/{flow_id}")

    authorization = emulator.controls.snaptrade_authorization(auth_id)
    assert authorization is not None and authorization["type"] == "trade"
    page = client.get("/snaptrade/").get_data(as_text=True)
    assert "Upgrade to trading" not in page
    assert "SnapTrade upgraded Charles Schwab to trade access" in page


def test_a_disabled_connection_is_shown_and_reconnected(services: Any, emulator: Any) -> None:
    client = logged_in_client(services)
    schwab = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]
    emulator.controls.disable_connection(schwab)

    page = client.get("/connections").get_data(as_text=True)
    assert "Disabled" in page and "Reconnect" in page and f'value="{schwab}"' in page
    state = services.connections.get(services.user_email, "snaptrade", schwab)
    assert state is not None and state.status == "disabled"

    flow_id = _flow_id(
        post(client, "/snaptrade/connect", {"connection_type": "trade", "reconnect": schwab})
    )
    emulator.controls.complete_connection(_portal_session(client, flow_id), "charles-schwab")
    client.get(f"/snaptrade/connected/{flow_id}")

    authorization = emulator.controls.snaptrade_authorization(schwab)
    assert authorization is not None and authorization["disabled"] is False
    state = services.connections.get(services.user_email, "snaptrade", schwab)
    assert state is not None and state.status == "ok"
    assert "Disabled" not in client.get("/snaptrade/").get_data(as_text=True)


def test_an_unknown_return_link_is_refused_without_calling_snaptrade(
    services: Any, emulator: Any
) -> None:
    client = logged_in_client(services)
    emulator.controls.reset_counts()
    response = client.get("/snaptrade/connected/forged-flow")
    assert response.status_code == 303
    assert emulator.controls.calls() == 0
    assert "unknown or already used" in client.get("/snaptrade/").get_data(as_text=True)


# --- pages ---------------------------------------------------------------------------------


def test_positions_page_has_allocation_charts_data_age_and_refresh_buttons(
    services: Any,
) -> None:
    page = logged_in_client(services).get("/").get_data(as_text=True)
    assert page.count("<svg") >= 2
    assert "By security type" in page and "By institution" in page
    assert "Data age:" in page
    for provider in ("plaid", "snaptrade"):
        assert f'name="provider" value="{provider}"' in page


def test_positions_page_warns_about_an_institution_counted_once(services: Any) -> None:
    # The demo data links one institution through both providers (Interactive Brokers).
    both = [i.name for i in data.PLAID_INSTITUTIONS.values() if i.snaptrade_brokerage_id]
    assert both, "the seeded data must link an institution through both providers"
    client = logged_in_client(services)
    overlaps = client.get("/api/positions?format=summary").get_json()["overlaps"]
    assert [overlap["institution"] for overlap in overlaps] == both
    page = client.get("/").get_data(as_text=True)
    assert "Counted once" in page
    for name in both:
        assert f"{name} is linked through" in page


def test_refreshing_one_provider_calls_only_that_provider(
    services: Any, emulator: Any, clock: Any
) -> None:
    client = logged_in_client(services)
    client.get("/")  # both caches are fresh now
    clock.advance(minutes=5)  # past the refresh cooldown
    emulator.controls.reset_counts()
    response = post(client, "/positions/refresh", {"provider": "snaptrade"})
    assert response.status_code == 303
    assert emulator.controls.calls("snaptrade /accounts") >= 1
    assert emulator.controls.calls("plaid /investments/holdings/get") == 0
    assert "SnapTrade positions refreshed." in client.get("/").get_data(as_text=True)


def test_a_failed_refresh_is_reported_and_keeps_the_rows(
    services: Any, emulator: Any, clock: Any
) -> None:
    client = logged_in_client(services)
    client.get("/")
    clock.advance(minutes=5)  # past the refresh cooldown
    emulator.controls.fail("snaptrade /accounts", "503")
    post(client, "/positions/refresh", {"provider": "snaptrade"})
    emulator.controls.clear()
    page = client.get("/").get_data(as_text=True)
    assert "SnapTrade refresh failed" in page
    assert "Charles Schwab" in page


def test_refresh_window_text_follows_the_settings_on_every_page(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    services = make_services(
        tmp_path, sqlite_url, emulator, clock, PLAID_CACHE_HOURS="96", SNAPTRADE_CACHE_HOURS="6"
    )
    client = logged_in_client(services)
    for path in ("/", "/connections"):
        page = client.get(path).get_data(as_text=True)
        assert "Plaid data refreshes after 96h" in page, path
        assert "SnapTrade data refreshes after 6h" in page, path
    assert "Plaid data refreshes after 72h" not in client.get("/plaid/").get_data(as_text=True)


def test_trades_and_costs_pages_render(services: Any) -> None:
    client = logged_in_client(services)
    trades = client.get("/trades")
    assert trades.status_code == 200
    assert "No previews or orders yet." in trades.get_data(as_text=True)
    costs = client.get("/costs").get_data(as_text=True)
    assert "per month" in costs and "Plaid" in costs and "SnapTrade" in costs
