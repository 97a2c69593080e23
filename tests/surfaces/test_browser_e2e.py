"""End to end in a real browser: Debian's headless Chromium driven by Playwright (sync API).

The app runs on a werkzeug server on a free loopback port, against a test
emulator and SQLite in tmp_path, for a user with nothing linked. The test logs
in, links Plaid through the emulator's Hosted Link page, links a SnapTrade
brokerage through the emulator's portal, sees the new positions, asks for a refresh
moments after linking (and is shown the rows just fetched), logs out and is refused.
Screenshots of every page go to ``test-output/screenshots/`` at the repository root
(gitignored).

Chromium, the tab helper and the skip-locally-fail-in-CI rule are in
``tests/browser_fixtures.py`` (shared with ``tests/surfaces/test_deployed.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_fixtures import WAIT_MS, Pages, free_port, launched_chromium
from tests.conftest import make_services
from tests.web_fixtures import TEST_PASSWORD, make_app

pytestmark = pytest.mark.slow

USER = "browser.person@example.com"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def live_app(tmp_path: Path, sqlite_url: str, emulator: Any) -> Iterator[str]:
    """The base URL of the app, served from a thread on 127.0.0.1:<free port>."""
    from werkzeug.serving import make_server

    from services.composition import system_clock

    port = free_port()
    services = make_services(
        tmp_path,
        sqlite_url,
        emulator,
        system_clock,
        DEFAULT_USER_EMAIL=USER,
        # Where the providers send the person back: this server, not make run's address.
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    services.web_auth.passwords.set_password(TEST_PASSWORD)
    app = make_app(services, TESTING=False, PLAID_LINK_POLL_SECONDS=0.2)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-web-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        services.close()


def test_a_person_links_both_providers_sees_positions_refreshes_and_logs_out(
    browser: Any, live_app: str, emulator: Any
) -> None:
    base_url = live_app
    context = browser.new_context()
    tab = Pages(context.new_page(), base_url)
    page = tab.page
    page.set_default_timeout(WAIT_MS)

    # Log in (the first visit is sent to the login page).
    tab.goto("/")
    assert page.url.startswith(f"{base_url}/login")
    tab.shot("01-login")
    page.fill("input[name=email]", USER)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base_url}/")
    assert "No positions yet" in tab.text()
    tab.shot("02-positions-empty")

    # Plaid: Hosted Link on the emulator's page, then back to our progress page.
    tab.goto("/plaid/")
    page.click("button:has-text('Link an institution with Plaid')")
    page.wait_for_selector("#open-plaid-link")
    tab.shot("03-plaid-link-waiting")
    page.click("#open-plaid-link")
    page.wait_for_selector("button[value=merrill-lynch]")
    tab.shot("04-plaid-hosted-link-emulator")
    page.click("button[value=merrill-lynch]")
    page.wait_for_selector("#link-progress[data-status=done]")
    assert "Merrill Lynch is linked" in tab.text()
    tab.shot("05-plaid-link-done")

    # Linking Merrill again is refused. The person finishes Link elsewhere (the emulator's
    # switch) while this page stays open: only its polling script can show the outcome.
    tab.goto("/plaid/")
    page.click("button:has-text('Link an institution with Plaid')")
    page.wait_for_selector("#link-progress[data-status=waiting]")
    hosted_link_url = page.get_attribute("#open-plaid-link", "href")
    emulator.controls.complete_link(hosted_link_url.rsplit("/", 1)[1], "merrill-lynch")
    page.wait_for_selector("#link-progress[data-status=duplicate]")
    assert "already linked" in tab.text()
    assert page.is_visible("button:has-text('Use update mode for Merrill Lynch')")
    tab.shot("05b-plaid-duplicate-refused")

    # SnapTrade: the connection portal on the emulator's page, then back to us.
    tab.goto("/snaptrade/")
    page.select_option("select[name=connection_type]", "read")
    page.click("button:has-text('Connect a brokerage with SnapTrade')")
    page.wait_for_selector("#open-snaptrade-portal")
    tab.shot("06-snaptrade-portal-link")
    page.click("#open-snaptrade-portal")
    page.wait_for_selector("button[value=charles-schwab]")
    tab.shot("07-snaptrade-portal-emulator")
    page.click("button[value=charles-schwab]")
    page.wait_for_url(f"{base_url}/snaptrade/")
    text = tab.text()
    assert "SnapTrade connected Charles Schwab; positions are up to date." in text
    assert "Charles Schwab" in text and "Upgrade to trading" in text
    tab.shot("08-snaptrade-connected")

    # The new positions, with the allocation charts and the refresh windows.
    tab.goto("/")
    text = tab.text()
    for expected in (
        "Merrill Lynch",
        "Charles Schwab",
        "Plaid data refreshes after 72h",
        "SnapTrade data refreshes after 24h",
        "By security type",
        "By institution",
    ):
        assert expected in text, expected
    tab.shot("09-positions")

    # Refresh one provider: Plaid was fetched when Merrill was linked, moments ago, so the
    # page shows those rows without calling Plaid again (the refresh cooldown).
    emulator.controls.reset_counts()
    page.click("button:has-text('Refresh Plaid now')")
    page.wait_for_selector("text=Plaid positions were fetched in the last few minutes")
    assert emulator.controls.calls("plaid /investments/holdings/get") == 0
    assert emulator.controls.calls("snaptrade /accounts") == 0
    tab.shot("10-positions-refreshed")

    for path, name in (
        ("/connections", "11-connections"),
        ("/trades", "12-trades"),
        ("/costs", "13-costs"),
    ):
        assert tab.goto(path).status == 200, path
        tab.shot(name)

    # Readable on a phone: nothing wider than the screen.
    phone = Pages(
        browser.new_context(viewport=PHONE, storage_state=context.storage_state()).new_page(),
        base_url,
    )
    for path, name in (("/", "14-phone-positions"), ("/connections", "15-phone-connections")):
        phone.goto(path)
        overflow = phone.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone screen"
        phone.shot(name)

    # Log out and be refused.
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base_url}/login")
    assert "You are logged out." in tab.text()
    tab.goto("/connections")
    assert page.url.startswith(f"{base_url}/login")
    assert page.request.get(f"{base_url}/api/positions").status == 401
    tab.shot("16-logged-out")

    assert tab.problems == [] and phone.problems == []
