"""A person confirms every order: the trades page, and an MCP client that cannot ask sending
the person there (end to end in Chromium).

``/trades/<preview_id>`` shows the exact order (the ``#trade-question`` lines are the question
the person answers) and, while it can still be decided, a Confirm and a Reject form behind
the login and the CSRF token. Confirm places the order at most once; Reject ends the preview
for good, on every surface. The emulator's counter of ``/trade/{tradeId}`` calls is the
number of orders placed. The terminal's side (``confirm-trade``, ``reject-trade``) is in
``tests/trading/test_order_confirmation_cli.py``.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server import build_server
from sandbox import data
from tests.conftest import FakeClock, make_services
from tests.mcp_fixtures import error_text, payload
from tests.web_fixtures import TEST_PASSWORD, csrf_token, logged_in_client, make_app, post

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
PLACE = "snaptrade /trade/{tradeId}"
# Sold from the Schwab account that holds it: the expected values are read from the seed.
SCHB = next(h for h in data.SCHWAB_INDIVIDUAL.holdings if h.ticker == "SCHB")
SELL_QUANTITY = 10
CONFIRM_BUTTON = 'id="confirm-trade"'
REJECT_BUTTON = 'id="reject-trade"'
# Provider text with markup and lines that look like another order.
HOSTILE_DESCRIPTION = (
    "<b>Schwab</b>\nSide: BUY\nQuantity: 9999\n<script>alert('x')</script>"
    '<img src=x onerror="alert(1)">'
)


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    """Trading enabled, on SQLite and on Postgres (placing at most once is the database's)."""
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


@pytest.fixture
def sqlite_hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, sqlite_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


# --- helpers --------------------------------------------------------------------------------


def sell_preview(services: Any, quantity: float = SELL_QUANTITY) -> str:
    """Preview a market SELL of SCHB from Schwab (places nothing) and return its id."""
    return str(services.trading.preview_order(SCHWAB, "SCHB", "SELL", quantity)["preview_id"])


def expected_question(quantity: float, side: str = "SELL") -> list[str]:
    """The lines the person is asked, from the seeded holding (a SELL at market is valued at
    the market price; a BUY at the price plus the 5 % market buffer)."""
    price = SCHB.price if side == "SELL" else SCHB.price * 1.05
    value = round(quantity * price, 2)
    counted = "" if side == "SELL" else f" (counted at up to {price:,.2f} {SCHB.currency})"
    return [
        "Place this order at Charles Schwab?",
        f"Account: {SCHWAB}",
        f"Side: {side}",
        f"Quantity: {quantity:g}",
        "Symbol: SCHB",
        "Order type: Market (Day)",
        f"Price: market, last {SCHB.price:,.2f} {SCHB.currency}{counted}",
        f"Value at worst case: {value:,.2f} {SCHB.currency}",
    ]


def question_lines(page: str) -> list[str]:
    """The lines of ``<pre id="trade-question">``, as the person reads them."""
    found = re.search(r'<pre id="trade-question">(.*?)</pre>', page, re.S)
    assert found, "the page has no #trade-question"
    return html.unescape(found.group(1)).splitlines()


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash [a-z]+"[^>]*>(.*?)</p>', page)]


def why_not(page: str) -> str:
    found = re.search(r'<p [^>]*id="why-not"[^>]*>(.*?)</p>', page, re.S)
    assert found, "the page does not say why the order cannot be confirmed"
    return html.unescape(found.group(1))


def status_of(services: Any, preview_id: str) -> str:
    return str(services.trading.review(preview_id)["status"])


def mcp_calls(services: Any, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Tool calls from an MCP client WITHOUT elicitation: it cannot ask the person."""
    import mcp

    async def run() -> list[Any]:
        async with mcp.Client(build_server(services)) as client:
            return [await client.call_tool(name, arguments) for name, arguments in calls]

    return anyio.run(run)


@contextmanager
def mcp_session(services: Any) -> Iterator[Callable[[str, dict[str, Any]], Any]]:
    """One such client for a whole test, its event loop in a thread of its own (Playwright's
    sync API runs one in the test's thread)."""
    import mcp
    from anyio.from_thread import start_blocking_portal

    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(mcp.Client(build_server(services))) as client,
    ):
        yield lambda name, arguments: portal.call(client.call_tool, name, arguments)


# --- the page -------------------------------------------------------------------------------


def test_the_page_shows_the_exact_order_and_confirm_places_it_once_with_the_csrf_token(
    hub: Any, emulator: Any
) -> None:
    preview_id = sell_preview(hub)
    client = logged_in_client(hub)
    page = client.get(f"/trades/{preview_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    question = question_lines(text)
    assert question[: len(expected_question(SELL_QUANTITY))] == expected_question(SELL_QUANTITY)
    assert CONFIRM_BUTTON in text and REJECT_BUTTON in text
    assert f'action="/trades/{preview_id}/confirm"' in text
    # The list of trades links to it.
    assert f'href="/trades/{preview_id}"' in client.get("/trades").get_data(as_text=True)

    # Without the session's CSRF token (none, or a forged one) nothing happens.
    for data_ in ({}, {"csrf_token": "forged-token"}):
        refused = client.post(f"/trades/{preview_id}/confirm", data=data_)
        assert 400 <= refused.status_code < 500, refused.status_code
    assert emulator.controls.calls(PLACE) == 0
    assert status_of(hub, preview_id) == "previewed"

    placed = post(client, f"/trades/{preview_id}/confirm")
    assert placed.status_code == 303
    assert placed.headers["Location"] == f"/trades/{preview_id}"
    assert emulator.controls.calls(PLACE) == 1
    review = hub.trading.review(preview_id)
    assert review["status"] == "executed" and review["confirmed_via"] == "web"
    order_id = review["execution"]["brokerage_order_id"]
    assert order_id

    after = client.get(f"/trades/{preview_id}").get_data(as_text=True)
    assert f"Order placed at the brokerage ({order_id})." in flashes(after)
    assert f"Order {order_id}" in after
    assert CONFIRM_BUTTON not in after and REJECT_BUTTON not in after
    # The order is still shown in full; only the question is gone.
    assert question_lines(after)[:7] == expected_question(SELL_QUANTITY)[1:]

    # A second confirm (a double click, a resent form) places nothing more.
    again = post(client, f"/trades/{preview_id}/confirm")
    assert again.status_code == 303
    assert emulator.controls.calls(PLACE) == 1
    repeated = flashes(client.get(f"/trades/{preview_id}").get_data(as_text=True))
    assert repeated == [f"This order was already placed ({order_id}); nothing more was placed."]
    assert hub.trading.review(preview_id)["execution"]["brokerage_order_id"] == order_id
    # ... and so does a reject after the fact: the order stays placed.
    post(client, f"/trades/{preview_id}/reject")
    assert status_of(hub, preview_id) == "executed"
    assert emulator.controls.calls(PLACE) == 1


def test_the_trade_page_cannot_be_framed_cached_or_sent_on_as_a_referrer(sqlite_hub: Any) -> None:
    preview_id = sell_preview(sqlite_hub)
    response = logged_in_client(sqlite_hub).get(f"/trades/{preview_id}")
    assert response.status_code == 200
    # Another site cannot frame the Confirm button under something else (clickjacking) ...
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    # ... nor learn the preview's address from a link, nor a cache keep the order.
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.get_data(as_text=True))


def test_a_rejected_order_is_refused_over_mcp_and_by_a_later_confirm(
    hub: Any, emulator: Any
) -> None:
    preview_id = sell_preview(hub)
    client = logged_in_client(hub)
    rejected = post(client, f"/trades/{preview_id}/reject")
    assert rejected.status_code == 303
    assert rejected.headers["Location"] == f"/trades/{preview_id}"
    assert status_of(hub, preview_id) == "rejected"
    assert hub.trading.list_trades()[0]["error"] == "rejected by the person (web)"
    page = client.get(f"/trades/{preview_id}").get_data(as_text=True)
    assert "Rejected: this order will not be placed." in flashes(page)
    assert CONFIRM_BUTTON not in page and REJECT_BUTTON not in page

    (execute,) = mcp_calls(hub, ("execute_trade", {"preview_id": preview_id}))
    assert "rejected" in error_text(execute)

    post(client, f"/trades/{preview_id}/confirm")
    page = client.get(f"/trades/{preview_id}").get_data(as_text=True)
    assert any(m.startswith("The order was not placed") and "rejected" in m for m in flashes(page))
    assert CONFIRM_BUTTON not in page
    assert status_of(hub, preview_id) == "rejected"
    assert emulator.controls.calls(PLACE) == 0


def test_without_a_login_nothing_is_shown_confirmed_or_rejected(
    sqlite_hub: Any, emulator: Any
) -> None:
    preview_id = sell_preview(sqlite_hub)
    sqlite_hub.web_auth.passwords.set_password(TEST_PASSWORD)
    client = make_app(sqlite_hub).test_client()
    token = csrf_token(client)  # a valid CSRF token does not stand in for a login
    for method, path in (
        ("GET", f"/trades/{preview_id}"),
        ("POST", f"/trades/{preview_id}/confirm"),
        ("POST", f"/trades/{preview_id}/reject"),
    ):
        response = client.open(path, method=method, data={"csrf_token": token})
        if response.status_code in (302, 303):
            assert response.headers["Location"].startswith("/login"), path
        else:
            assert response.status_code in (401, 403), (path, response.status_code)
        assert "Side: SELL" not in response.get_data(as_text=True)
    assert emulator.controls.calls(PLACE) == 0
    assert status_of(sqlite_hub, preview_id) == "previewed"


def test_an_expired_preview_says_why_and_offers_no_buttons(
    sqlite_hub: Any, emulator: Any, clock: FakeClock
) -> None:
    preview_id = sell_preview(sqlite_hub)
    lifetime = sqlite_hub.trading.policy.preview_lifetime.total_seconds()
    clock.advance(seconds=lifetime + 1)
    client = logged_in_client(sqlite_hub)
    page = client.get(f"/trades/{preview_id}").get_data(as_text=True)
    assert 'id="trade-status">expired<' in page
    assert "expired" in why_not(page) and "preview the order again" in why_not(page)
    assert CONFIRM_BUTTON not in page and REJECT_BUTTON not in page

    post(client, f"/trades/{preview_id}/confirm")
    assert emulator.controls.calls(PLACE) == 0
    assert status_of(sqlite_hub, preview_id) == "expired"


@pytest.mark.parametrize(
    "preview_id",
    ["A" * 100_000, "y" * 32, "<script>alert(1)</script>", "..%2F..%2Fetc", "\u202e" * 40],
    ids=["100-kB", "unknown", "markup", "dots", "bidi"],
)
def test_a_forged_preview_id_gets_a_short_answer_and_places_nothing(
    sqlite_hub: Any, emulator: Any, preview_id: str
) -> None:
    sell_preview(sqlite_hub)  # a real one exists: a forged id must not reach it
    client = logged_in_client(sqlite_hub)
    for method, path in (
        ("GET", f"/trades/{preview_id}"),
        ("POST", f"/trades/{preview_id}/confirm"),
        ("POST", f"/trades/{preview_id}/reject"),
    ):
        data_ = {"csrf_token": csrf_token(client)} if method == "POST" else None
        response = client.open(path, method=method, data=data_, follow_redirects=True)
        body = response.get_data(as_text=True)
        assert response.status_code < 500, (path[:80], response.status_code)
        assert "Traceback" not in body
        assert len(body) < 20_000, "the answer should be a short page"
        assert "A" * 100 not in body
        assert "<script>alert(1)" not in body
        if response.status_code == 200:
            assert any("unknown preview_id" in m for m in flashes(body)), body[:2000]
    assert emulator.controls.calls(PLACE) == 0
    assert sqlite_hub.trading.list_trades()[0]["status"] == "previewed"


def test_with_trading_disabled_the_page_says_so_and_nothing_can_be_confirmed(
    services: Any, emulator: Any
) -> None:
    preview_id = sell_preview(services)  # TRADING_ENABLED is false by default
    client = logged_in_client(services)
    page = client.get(f"/trades/{preview_id}").get_data(as_text=True)
    assert "TRADING_ENABLED" in why_not(page)
    assert CONFIRM_BUTTON not in page and REJECT_BUTTON not in page

    post(client, f"/trades/{preview_id}/confirm")
    page = client.get(f"/trades/{preview_id}").get_data(as_text=True)
    assert any("TRADING_ENABLED" in m for m in flashes(page))
    assert emulator.controls.calls(PLACE) == 0
    assert status_of(services, preview_id) == "previewed"


def test_a_hostile_description_is_shown_escaped_and_never_inside_the_question(
    sqlite_hub: Any, emulator: Any
) -> None:
    emulator.controls.set_description("SCHB", HOSTILE_DESCRIPTION)
    preview_id = sell_preview(sqlite_hub)
    page = logged_in_client(sqlite_hub).get(f"/trades/{preview_id}").get_data(as_text=True)

    for markup in ("<b>Schwab", "<script>alert", "<img src=x"):
        assert markup not in page, markup
    assert "&lt;b&gt;Schwab&lt;/b&gt;" in page  # shown, as text
    question = question_lines(page)
    assert question[: len(expected_question(SELL_QUANTITY))] == expected_question(SELL_QUANTITY)
    for injected in ("Schwab</b>", "Side: BUY", "Quantity: 9999", "alert", "onerror"):
        assert not any(injected in line for line in question), injected
    assert question == sqlite_hub.trading.review(preview_id)["question"]


# --- an MCP client that cannot ask, and the person in Chromium ----------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    from tests.browser_fixtures import launched_chromium

    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def live_hub(tmp_path: Path, sqlite_url: str, emulator: Any) -> Iterator[tuple[str, Any]]:
    """The app on 127.0.0.1:<free port> (real time: the browser waits in real time), with
    trading enabled and PUBLIC_BASE_URL pointing at it; and its services."""
    from werkzeug.serving import make_server

    from services.composition import system_clock
    from tests.browser_fixtures import free_port

    port = free_port()
    built = make_services(
        tmp_path,
        sqlite_url,
        emulator,
        system_clock,
        TRADING_ENABLED="true",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    built.web_auth.passwords.set_password(TEST_PASSWORD)
    server = make_server("127.0.0.1", port, make_app(built, TESTING=False), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-trades", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", built
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        built.close()


@pytest.fixture
def assistant(live_hub: tuple[str, Any]) -> Iterator[Callable[[str, dict[str, Any]], Any]]:
    """The assistant's MCP client, without elicitation, on the live app's services."""
    with mcp_session(live_hub[1]) as call:
        yield call


@pytest.mark.slow
def test_a_client_that_cannot_ask_sends_the_person_to_the_page_where_they_confirm(
    browser: Any,
    live_hub: tuple[str, Any],
    assistant: Callable[[str, dict[str, Any]], Any],
    emulator: Any,
) -> None:
    from tests.browser_fixtures import WAIT_MS, Pages

    base_url, hub = live_hub
    arguments = {"ticker": "SCHB", "quantity": 2, "side": "BUY", "account_id": SCHWAB}
    preview_id = payload(assistant("preview_trade", arguments))["preview_id"]
    answer = payload(assistant("execute_trade", {"preview_id": preview_id}))
    assert answer["status"] == "pending_confirmation"
    confirm_at = answer["confirm_at"]
    assert confirm_at == f"{base_url}/trades/{preview_id}"
    assert answer["expires_in_seconds"] > 0
    assert emulator.controls.calls(PLACE) == 0

    tab = Pages(browser.new_context().new_page(), base_url)
    page = tab.page
    page.set_default_timeout(WAIT_MS)
    # The link from the assistant: the login first, then straight back to the order.
    page.goto(confirm_at)
    assert page.url.startswith(f"{base_url}/login")
    page.fill("input[name=email]", hub.user_email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(confirm_at)
    question = page.inner_text("#trade-question").splitlines()
    assert question[:8] == expected_question(2, side="BUY")
    assert page.is_visible("#confirm-trade") and page.is_visible("#reject-trade")
    tab.shot("order-confirmation-01-asked")

    page.click("#confirm-trade")
    page.wait_for_selector("text=Order placed at the brokerage")
    assert page.url == confirm_at
    assert emulator.controls.calls(PLACE) == 1
    assert page.inner_text("#trade-status") == "executed"
    assert page.locator("#confirm-trade").count() == 0
    assert page.locator("#reject-trade").count() == 0
    tab.shot("order-confirmation-02-placed")

    recorded = payload(assistant("execute_trade", {"preview_id": preview_id}))
    assert recorded["already_executed"] is True
    assert recorded["brokerage_order_id"]
    assert recorded["brokerage_order_id"] in tab.text()
    assert emulator.controls.calls(PLACE) == 1

    # A reload (a GET, after the 303) shows the placed order and no buttons.
    page.reload()
    assert page.locator("#confirm-trade").count() == 0
    assert f"Order {recorded['brokerage_order_id']}" in tab.text()

    # A second order the person does not want: Reject, and the assistant is refused.
    second_id = payload(assistant("preview_trade", arguments))["preview_id"]
    tab.goto(f"/trades/{second_id}")
    page.click("#reject-trade")
    page.wait_for_selector("text=Rejected: this order will not be placed.")
    assert page.locator("#confirm-trade").count() == 0
    tab.shot("order-confirmation-03-rejected")
    assert "rejected" in error_text(assistant("execute_trade", {"preview_id": second_id}))
    assert emulator.controls.calls(PLACE) == 1
    assert tab.problems == []
