"""Every page a person reaches from the header passes axe-core with no violation.

axe-core (the npm package pinned in ``tests/accessibility/package.json``; ``make test``
installs it with ``npm ci``) runs in Debian's headless Chromium, driven by Playwright, on
the login page (also opened on another origin than PUBLIC_BASE_URL, with its notice) and,
logged in as the demo user with both providers linked, on every page the header links to:
the links are read from the header itself, so a new page is checked the day it is linked.
All of axe's default rules apply (WCAG 2 A and AA, and the best practices such as
``region``: nothing outside a landmark). Without axe-core or Chromium the test skips
locally and FAILS in CI (CI=true), as the other browser tests do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from settings import PROJECT_ROOT
from tests.browser_fixtures import (
    SCREENSHOTS,
    WAIT_MS,
    Pages,
    launched_chromium,
    unavailable,
)
from tests.web_fixtures import TEST_PASSWORD

pytestmark = pytest.mark.slow

AXE_CORE = PROJECT_ROOT / "tests" / "accessibility" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
# The header's links today: Positions, Activity, Connections, Plaid, SnapTrade, Trades, Costs.
HEADER_LINKS_AT_LEAST = 7

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    rule: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.html.slice(0, 160)),
  }));
}"""


def axe_core() -> Path:
    if not AXE_CORE.exists():
        unavailable(
            f"{AXE_CORE.relative_to(PROJECT_ROOT)} is missing "
            "(make test installs it: npm ci --prefix tests/accessibility)"
        )
    return AXE_CORE


def violations_on(tab: Pages, path: str) -> list[str]:
    """axe's violations on the page at ``path``, one line per element."""
    tab.goto(path)
    tab.page.wait_for_load_state("load")
    found = tab.page.evaluate(RUN_AXE)
    return [
        f"{path}: {v['rule']} ({v['impact']}: {v['help']}) at {node}"
        for v in found
        for node in v["nodes"]
    ]


def test_the_login_page_and_every_page_in_the_header_have_no_axe_violation(
    live_demo_app: tuple[str, Any],
) -> None:
    axe = axe_core()
    base_url, hub = live_demo_app
    with launched_chromium() as browser:
        context = browser.new_context(viewport=DESKTOP)
        # Before any script of the page, through the DevTools protocol: the page's strict
        # Content-Security-Policy stays as it is for everything the page itself loads.
        context.add_init_script(path=str(axe))
        tab = Pages(context.new_page(), base_url)
        tab.page.set_default_timeout(WAIT_MS)

        found = violations_on(tab, "/login")
        tab.shot("axe-login")
        # The same page opened on another origin than PUBLIC_BASE_URL, with its notice.
        elsewhere = Pages(context.new_page(), base_url.replace("127.0.0.1", "localhost"))
        found += violations_on(elsewhere, "/login")
        assert "PUBLIC_BASE_URL" in elsewhere.text()
        elsewhere.shot("axe-login-on-another-origin")
        tab.log_in(hub.user_email, TEST_PASSWORD)
        links = tab.page.eval_on_selector_all(
            "header nav a", "links => links.map(a => new URL(a.href).pathname)"
        )
        assert len(links) >= HEADER_LINKS_AT_LEAST, links
        for path in links:
            found += violations_on(tab, path)
            tab.shot("axe" + path.rstrip("/").replace("/", "-"))
        context.close()

    assert found == [], "\n".join(found)
    assert tab.problems + elsewhere.problems == []


# Each drawn label, bar and figure of every allocation chart, as boxes on the screen.
CHART_BOXES = """() => [...document.querySelectorAll("svg.bars")].map((svg) => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return { what: e.tagName + " " + (e.textContent || e.getAttribute("fill")),
             left: r.left, right: r.right, top: r.top, bottom: r.bottom }; };
  return { svg: box(svg),
           parts: [...svg.querySelectorAll("g > text, g > rect")].map(box)
                    .filter((b) => b.right - b.left > 0.5) };
})"""


def collisions(chart: dict[str, Any]) -> list[str]:
    """Parts of one chart that overlap each other or stick out of the chart."""
    svg, parts = chart["svg"], chart["parts"]
    found = [
        f"{a['what']!r} overlaps {b['what']!r}"
        for i, a in enumerate(parts)
        for b in parts[i + 1 :]
        if a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and b["top"] < a["bottom"] - 0.5
    ]
    found += [
        f"{part['what']!r} is cut off by the chart's edge"
        for part in parts
        if part["left"] < svg["left"] - 0.5 or part["right"] > svg["right"] + 0.5
    ]
    return found


def test_no_allocation_label_runs_into_a_bar_on_a_desktop_or_a_phone(
    live_demo_app: tuple[str, Any],
) -> None:
    base_url, hub = live_demo_app
    with launched_chromium() as browser:
        for name, viewport in (("desktop", DESKTOP), ("phone", {"width": 390, "height": 844})):
            context = browser.new_context(viewport=viewport)
            tab = Pages(context.new_page(), base_url)
            tab.page.set_default_timeout(WAIT_MS)
            tab.log_in(hub.user_email, TEST_PASSWORD)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            charts_shot = SCREENSHOTS / f"allocation-{name}.png"
            tab.page.locator(".charts").first.screenshot(path=str(charts_shot))
            charts = tab.page.evaluate(CHART_BOXES)
            labels = [part["what"] for chart in charts for part in chart["parts"]]
            # The demo's longest institution name is drawn whole.
            assert "text Interactive Brokers" in labels, labels
            assert [c for chart in charts for c in collisions(chart)] == [], name
            context.close()
