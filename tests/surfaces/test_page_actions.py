"""The browser does what it recommends: every action a page suggests is on that page.

A person in a browser has no terminal. No rendered page names a command to run, except the
login page's note that the first password is set on the server. Instead:

* the overlap warning (positions) and the waste lines (costs) link to the institution's
  migration page (``/migrations/<institution>``), which checks first and changes nothing
  until the person confirms;
* the connections page has a trading probe button (a form post with the CSRF token, behind
  the login) that asks SnapTrade once per trade connection and, for error 1020, shows the
  support request filled in, with a Copy button (a script from this origin) and no secret;
* what cannot be done in a browser says why (a schema that is behind is the operator's).

The assistant and the terminal keep their own words: the MCP answers name the
``plan_institution_migration`` tool, the CLI its command, and both carry the same as data.

The emulator's demo has Interactive Brokers on both Plaid and SnapTrade (the overlap, once
positions are fetched) and IBKR's trading permission off (a probe answers 1020).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sandbox import data, demo
from services.composition import build_services
from settings import PROJECT_ROOT
from tests.conftest import FakeClock, find_secrets, make_services, make_settings
from tests.web_fixtures import TEST_PASSWORD, csrf_token, logged_in_client, make_app, post

COMMAND = "flask --app"
IBKR = "interactive-brokers"
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS[IBKR]
MIGRATION_LINK = f'href="/migrations/{IBKR}"'
MOVE_LABEL = "Move Interactive Brokers to SnapTrade"
PROBE = "/connections/probe-trading"
SYMBOLS = "snaptrade /accounts/{accountId}/symbols"
PAGES = ("/", "/costs", "/connections", "/trades", "/plaid/", "/snaptrade/")
TEMPLATES = PROJECT_ROOT / "routes" / "templates"
STATIC = PROJECT_ROOT / "routes" / "static"


@pytest.fixture
def client(services: Any) -> Any:
    return logged_in_client(services)


def section(html: str, label: str) -> str:
    """The part of a page in its ``<section aria-label="label">``."""
    start = html.index(f'aria-label="{label}"')
    return html[start : html.index("</section>", start)]


def trade_connections(services: Any) -> int:
    """How many SnapTrade connections a trading probe asks about (passive check: no probe)."""
    report = services.health.check_connections(probe_trading=False)
    return sum(
        1
        for row in report["snaptrade"]["connections"]
        if row["connection_type"] == "trade" and not row["disabled"]
    )


def calls_to(emulator: Any, provider: str) -> int:
    controls = emulator.controls
    return sum(controls.calls(e) for e in controls.endpoints if e.startswith(f"{provider} "))


def every_page(client: Any) -> dict[str, str]:
    """Every page a person reaches from the menu, and the connections page after a probe."""
    answers = {path: client.get(path) for path in PAGES}
    answers["trading probe"] = post(client, PROBE)
    for label, answer in answers.items():
        assert answer.status_code == 200, label
    return {label: answer.get_data(as_text=True) for label, answer in answers.items()}


# --- no page names a command -------------------------------------------------------------------


def test_no_page_tells_a_browser_user_to_run_a_command(client: Any) -> None:
    pages = every_page(client)
    # What used to name a command is on the pages (else this would pass by showing nothing).
    assert "Counted once" in pages["/"] and "Interactive Brokers" in pages["/"]
    assert "Money wasted" in pages["/costs"]
    assert "Error code 1020" in pages["trading probe"]
    for label, html in pages.items():
        assert COMMAND not in html, f"{label} tells a browser user to run a command"


def test_no_template_but_the_login_page_names_a_command() -> None:
    named = sorted(
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in [*TEMPLATES.rglob("*.html"), *STATIC.rglob("*")]
        if path.is_file() and COMMAND in path.read_text(encoding="utf-8", errors="replace")
    )
    assert named == ["routes/templates/login.html"]  # how the first password is set


def test_a_schema_that_is_behind_is_a_page_for_people_and_a_command_for_the_operator(
    tmp_path: Path,
) -> None:
    # Outside the embedded default nothing migrates by itself: the empty database is behind.
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'empty.db'}",
        PLAID_ENV="disabled",
        SNAPTRADE_ENV="disabled",
        PUBLIC_BASE_URL="https://hub.example.com",
    )
    hub = build_services(settings, clock=FakeClock())
    try:
        client = make_app(hub).test_client()
        page = client.get("/login", headers={"Accept": "text/html"})
        api = client.get("/api/positions", headers={"Accept": "application/json"})
        ready = client.get("/readyz").get_json()
    finally:
        hub.close()

    assert page.status_code == 503
    html = page.get_data(as_text=True)
    assert "schema migration on the server" in html
    assert "Nothing can be done about it in the browser" in html
    assert COMMAND not in html
    # The operator's surfaces still name what to run.
    assert (
        api.status_code == 503 and "flask --app app migrate" in api.get_json()["error"]["message"]
    )
    assert "flask --app app migrate" in ready["checks"]["schema"]


# --- the overlap and the waste: the migration page ---------------------------------------------


def test_the_overlap_and_the_waste_link_to_the_migration_page(client: Any) -> None:
    overlap = section(client.get("/").get_data(as_text=True), "Overlap warnings")
    assert MIGRATION_LINK in overlap and MOVE_LABEL in overlap
    assert "(checks first, changes nothing until you confirm)" in overlap

    waste = section(client.get("/costs").get_data(as_text=True), "Money wasted")
    assert MIGRATION_LINK in waste and MOVE_LABEL in waste

    # The link leads somewhere: the migration page of that institution.
    assert client.get(f"/migrations/{IBKR}").status_code == 200


def test_the_overlap_is_ended_by_the_one_supported_move_whatever_counts_first(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    hub = make_services(tmp_path, sqlite_url, emulator, clock, PROVIDER_PRIORITY="plaid,snaptrade")
    try:
        (overlap,) = hub.position_views.answer("summary")["overlaps"]
        assert overlap["counted_under"] == "plaid"
        assert overlap["resolve"]["from"] == "plaid" and overlap["resolve"]["to"] == "snaptrade"
        assert "--from plaid --to snaptrade" in overlap["resolve_with"]
        page = logged_in_client(hub).get("/").get_data(as_text=True)
        assert MIGRATION_LINK in section(page, "Overlap warnings")
        assert MOVE_LABEL in page
    finally:
        hub.close()


def test_the_assistant_and_the_terminal_keep_their_own_words(services: Any) -> None:
    (overlap,) = services.position_views.answer("summary")["overlaps"]
    assert overlap["resolve"] == {
        "action": "migrate_institution",
        "institution_slug": IBKR,
        "from": "plaid",
        "to": "snaptrade",
        "tool": "plan_institution_migration",
    }
    assert overlap["resolve_with"] == (
        f"flask --app app migrate-institution {IBKR} --from plaid --to snaptrade --execute"
    )

    costs = services.costs.report()
    assert len(costs["waste"]) == len(costs["waste_items"])  # the same wastes, in order
    (line,) = [w for w in costs["waste"] if "linked through both" in w]
    assert "plan_institution_migration" in line and f"migrate-institution {IBKR}" in line
    (item,) = [w for w in costs["waste_items"] if w["kind"] == "overlap"]
    assert item["institution_slug"] == IBKR
    assert (item["migrate_from"], item["migrate_to"]) == ("plaid", "snaptrade")

    report = services.health.check_connections(probe_trading=True)
    ibkr = next(r for r in report["snaptrade"]["connections"] if r["authorization_id"] == IBKR_AUTH)
    assert ibkr["remedy"] == "snaptrade_support_request"
    assert "flask --app app snaptrade-support-request" in ibkr["action"]


# --- the trading probe and the support request -------------------------------------------------


def test_the_probe_button_probes_each_trade_connection_and_shows_the_support_request(
    client: Any, services: Any, emulator: Any
) -> None:
    passive = client.get("/connections").get_data(as_text=True)
    assert f'action="{PROBE}"' in passive
    form = passive[passive.index(f'action="{PROBE}"') :].split("</form>", 1)[0]
    assert 'name="csrf_token"' in form and "Test trading access" in form
    assert "support-request-text" not in passive  # shown after a probe, not on every visit
    expected = trade_connections(services)
    assert expected == 2  # the demo's IBKR and Schwab
    emulator.controls.reset_counts()

    answer = post(client, PROBE)

    assert answer.status_code == 200
    assert emulator.controls.calls(SYMBOLS) == expected
    assert emulator.controls.calls("snaptrade /trade/impact") == 0
    html = answer.get_data(as_text=True)
    assert "Trading probe: 2 trade connection(s) checked" in html
    assert "Trading works" in html and "Trading refused" in html
    textarea = re.search(r'<textarea id="support-request-text"[^>]*>(.*?)</textarea>', html, re.S)
    assert textarea is not None and " readonly" in textarea.group(0)
    request = textarea.group(1)
    assert "Subject: Enable trading permissions for app" in request
    assert f"Client ID: {demo.SNAPTRADE_CLIENT_ID}" in request
    assert f"Affected authorizations: {IBKR_AUTH}" in request
    assert data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"] not in request
    assert '<button type="button" data-copy-target="support-request-text"' in html
    assert '<script src="/static/copy_text.js" defer></script>' in html
    assert not find_secrets(html)
    assert demo.SNAPTRADE_CONSUMER_KEY not in html and demo.SNAPTRADE_USER_SECRET not in html


def test_no_support_request_is_shown_when_every_connection_may_trade(
    client: Any, emulator: Any
) -> None:
    emulator.controls.set_trading_permission(IBKR_AUTH, True)
    html = post(client, PROBE).get_data(as_text=True)
    assert "Trading works for" in html and "Trading refused" not in html
    assert "support-request-text" not in html


def test_the_probe_needs_the_csrf_token_and_a_login(services: Any, emulator: Any) -> None:
    client = logged_in_client(services)
    emulator.controls.reset_counts()
    for data_ in ({}, {"csrf_token": "forged-token"}):
        assert client.post(PROBE, data=data_).status_code == 403
    anonymous = make_app(services).test_client()
    refused = anonymous.post(PROBE, data={"csrf_token": csrf_token(anonymous)})
    assert refused.status_code in (302, 303, 401)
    assert "/login" in refused.headers.get("Location", "/login")
    assert emulator.controls.calls(SYMBOLS) == 0
    assert calls_to(emulator, "snaptrade") == 0


def test_the_probe_never_asks_a_disabled_snaptrade(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    before = make_services(tmp_path, sqlite_url, emulator, clock)
    before.position_views.answer("summary")  # SnapTrade was used before it was switched off
    before.close()
    hub = make_services(
        tmp_path,
        sqlite_url,
        emulator,
        clock,
        SNAPTRADE_ENV="disabled",
        PUBLIC_BASE_URL="http://127.0.0.1:5000",
    )
    try:
        client = logged_in_client(hub)
        emulator.controls.reset_counts()
        assert f'action="{PROBE}"' not in client.get("/connections").get_data(as_text=True)
        answer = post(client, PROBE)  # an old form, a script: refused, nothing asked
        assert answer.status_code == 200
        html = answer.get_data(as_text=True)
        assert "SnapTrade is disabled here (SNAPTRADE_ENV=disabled)" in html
        assert "nothing was probed" in html
        assert calls_to(emulator, "snaptrade") == 0
    finally:
        hub.close()


def test_the_copy_script_comes_from_this_origin(client: Any) -> None:
    script = client.get("/static/copy_text.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    assert "navigator.clipboard" in script.get_data(as_text=True)
    html = post(client, PROBE).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/copy_text.js"]
    assert " style=" not in html


# --- in a real browser, on a phone ------------------------------------------------------------


PHONE = {"width": 390, "height": 844}


@pytest.mark.slow
def test_on_a_phone_the_move_links_and_the_copy_button_work(
    live_demo_app: tuple[str, Any], emulator: Any
) -> None:
    from tests.browser_fixtures import WAIT_MS, Pages, launched_chromium

    base_url, hub = live_demo_app
    with launched_chromium() as browser:
        context = browser.new_context(viewport=PHONE)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        tab = Pages(context.new_page(), base_url)
        page = tab.page
        page.set_default_timeout(WAIT_MS)

        def fits(name: str) -> None:
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} is {overflow}px wider than a phone screen"
            tab.shot(name)

        tab.goto("/login")
        page.fill("input[name=email]", hub.user_email)
        page.fill("input[name=password]", TEST_PASSWORD)
        page.click("button:has-text('Log in')")
        page.wait_for_url(f"{base_url}/")
        assert page.is_visible(f"a.migrate-link[href='/migrations/{IBKR}']")
        fits("page-actions-phone-positions")
        tab.goto("/costs")
        assert page.is_visible(f"a.migrate-link[href='/migrations/{IBKR}']")
        fits("page-actions-phone-costs")

        tab.goto("/connections")
        emulator.controls.reset_counts()
        page.click("button:has-text('Test trading access')")
        page.wait_for_selector("#support-request-text")
        assert emulator.controls.calls(SYMBOLS) == 2
        copy = page.locator("button[data-copy-target=support-request-text]")
        assert copy.is_visible()  # the script ran (it shows the button)
        copy.click()
        page.wait_for_selector("[data-copy-status]:has-text('Copied.')")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert f"Client ID: {demo.SNAPTRADE_CLIENT_ID}" in copied
        assert f"Affected authorizations: {IBKR_AUTH}" in copied
        assert not find_secrets(copied)
        fits("page-actions-phone-support-request")
        context.close()
    assert tab.problems == []
