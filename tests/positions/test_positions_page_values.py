"""The positions page in one currency: the base total with the rates used, and gains per
position and account, "unknown" where the broker sent no cost basis (never 0). Through the
Flask client and in headless Chromium, on a desktop and on a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandbox import data
from tests.web_fixtures import TEST_PASSWORD, logged_in_client

PHONE = {"width": 390, "height": 844}


def money(value: float) -> str:
    return f"{value:,.2f}"


def row_of(html: str, ticker: str) -> str:
    """The positions table row of ``ticker`` (the first: one account holds it)."""
    match = re.search(rf"<tr><td>{re.escape(ticker)}</td>.*?</tr>", html, re.S)
    assert match, f"no row for {ticker}"
    return match.group(0)


def test_the_page_shows_the_base_total_the_rates_and_each_gain(
    services: Any, emulator: Any
) -> None:
    emulator.controls.set_cost_basis("merrill-ira", "NVDA", None)
    client = logged_in_client(services)
    html = client.get("/").get_data(as_text=True)
    answer = services.position_views.answer("summary")
    fx = answer["fx"]

    assert f'Total in USD: <strong class="num">{money(answer["base_total"])} USD' in html
    [eur] = fx["rates"]
    assert f"1 EUR = {eur['rate']} USD on {eur['date']} ({eur['source']})" in html
    for warning in fx["warnings"]:
        assert warning in html
    # A known gain, signed, with its percent; the dropped basis says unknown, not 0.
    aapl = next(h for a in data.ALL_ACCOUNTS for h in a.holdings if h.ticker == "AAPL")
    assert aapl.cost_basis is not None
    gain = aapl.value - aapl.cost_basis
    assert f"{gain:+,.2f} ({gain / aapl.cost_basis * 100:+.2f}%)" in row_of(html, "AAPL")
    nvda = row_of(html, "NVDA")
    assert "unknown" in nvda and "+0.00" not in nvda
    # One chart per grouping, in USD: EUR cash is converted into it, not charted apart.
    assert f"By security type · USD {money(answer['base_total'])}" in html
    assert "By security type · EUR" not in html
    # The IRA's header says part of its value has no cost basis.
    assert re.search(r"Merrill Traditional IRA.*?without a cost basis", html, re.S)


def test_a_currency_without_a_rate_says_so_on_the_page(services: Any, emulator: Any) -> None:
    emulator.controls.set_cash("schwab-individual", "ARS", 250_000)
    services.position_views.answer("summary", "snaptrade")
    html = logged_in_client(services).get("/").get_data(as_text=True)
    assert re.search(r"<th>ARS</th><td class=\"num\">250,000.00</td>\s*<td[^>]*>.*?no rate", html)
    assert "no exchange rate to USD for ARS" in html
    # Never added to the USD charts at 1:1: a chart of its own.
    assert "By security type · ARS 250,000.00" in html


@pytest.mark.slow
def test_in_chromium_the_totals_and_gains_read_on_a_desktop_and_a_phone(
    live_demo_app: tuple[str, Any], emulator: Any
) -> None:
    from tests.browser_fixtures import WAIT_MS, Pages, launched_chromium

    base_url, hub = live_demo_app
    emulator.controls.set_cost_basis("merrill-ira", "NVDA", None)
    with launched_chromium() as browser:
        for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
            context = browser.new_context(viewport=viewport)
            tab = Pages(context.new_page(), base_url)
            page = tab.page
            page.set_default_timeout(WAIT_MS)
            tab.log_in(hub.user_email, TEST_PASSWORD)
            answer = hub.position_views.answer("summary")
            total = page.inner_text(".base-total")
            assert f"{money(answer['base_total'])} USD" in total
            assert "EUR/USD" not in page.inner_text(".rates")  # said in words
            assert "1 EUR = " in page.inner_text(".rates")
            nvda = page.locator("tr", has=page.locator("td", has_text=re.compile("^NVDA$")))
            assert nvda.locator(".position-gain").inner_text().strip() == "unknown"
            gain_text = page.inner_text(".portfolio-gain")
            assert money(answer["gains"]["unrealized_gain"]) in gain_text
            assert tab.overflow() <= 0, f"the positions page is {tab.overflow()}px wider ({name})"
            tab.shot(f"positions-values-{name}")
            context.close()
    assert tab.problems == []
