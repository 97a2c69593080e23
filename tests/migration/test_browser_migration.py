"""A person moves Interactive Brokers from Plaid to SnapTrade in headless Chromium, from the
positions page's overlap warning to the stored report, with a second tab opened and the
first closed while the move runs.

The move runs in the app's background thread (as deployed); the emulator holds the Plaid
Item removal until the test has opened and closed its tabs, so "while the move runs" is a
state the test controls, not a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser_fixtures import WAIT_MS, Pages, launched_chromium
from tests.web_fixtures import TEST_PASSWORD

pytestmark = pytest.mark.slow

ITEM_REMOVE = "plaid /item/remove"


@pytest.fixture
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


def log_in(tab: Pages, email: str) -> None:
    tab.goto("/login")
    tab.page.fill("input[name=email]", email)
    tab.page.fill("input[name=password]", TEST_PASSWORD)
    tab.page.click("button:has-text('Log in')")
    tab.page.wait_for_url(f"{tab.base_url}/")


def test_a_person_moves_ibkr_from_the_positions_page(
    browser: Any, live_demo_app: tuple[str, Any], emulator: Any
) -> None:
    base_url, services = live_demo_app
    context = browser.new_context()
    tab = Pages(context.new_page(), base_url)
    page = tab.page
    page.set_default_timeout(WAIT_MS)
    log_in(tab, services.user_email)

    # The positions page counts IBKR once and offers the move.
    assert "Interactive Brokers is linked through" in tab.text()
    page.click("a.migrate-link")
    page.wait_for_url(f"{base_url}/migrations/interactive-brokers")
    tab.shot("migration-01-institution-page")

    # The checks: run in the background, followed live, then the plan with its saving.
    page.click("#check-move")
    page.wait_for_selector("#confirm-move")
    text = tab.text()
    for step in ("gate", "verify_holdings", "dry_run", "plan"):
        assert f"{step}:" in text
    assert "holdings match" in text and "a month" in text
    tab.shot("migration-02-plan")
    assert emulator.controls.calls(ITEM_REMOVE) == 0

    with emulator.controls.hold(ITEM_REMOVE) as removal:
        page.fill("input[name=confirm_institution]", "Interactive Brokers")
        page.click("#confirm-move-button")
        page.wait_for_selector("#run-status:has-text('executing')")
        run_url = page.url
        removal.wait_until_held(1)
        tab.shot("migration-03-running")

        # A second tab opened during the run sees this run, not a new one.
        second = Pages(context.new_page(), base_url)
        second.page.set_default_timeout(WAIT_MS)
        second.goto("/migrations/interactive-brokers")
        assert second.page.url == run_url
        second.page.close()
        # The person closes the tab mid-run: the move goes on without it.
        page.close()
        removal.release()

    back = Pages(context.new_page(), base_url)
    back.page.set_default_timeout(WAIT_MS)
    back.goto(run_url.removeprefix(base_url))
    back.page.wait_for_selector("#run-status:has-text('completed')")
    assert "Interactive Brokers only under snaptrade; totals unchanged" in back.text()
    back.shot("migration-04-completed")
    assert emulator.controls.calls(ITEM_REMOVE) == 1

    # The positions page shows IBKR once, under SnapTrade, with no overlap left.
    back.goto("/")
    text = back.text()
    assert "Counted once" not in text
    assert "Interactive Brokers" in text
    assert "Interactive Brokers" not in back.page.inner_text("#positions-plaid")
    assert "Interactive Brokers" in back.page.inner_text("#positions-snaptrade")
    back.goto("/costs")
    assert "Move Interactive Brokers" not in back.text()
    back.goto("/migrations")
    assert run_url.removeprefix(base_url) in back.page.content()
    back.shot("migration-05-runs")
    assert tab.problems == [] and back.problems == []
