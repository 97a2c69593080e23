"""Hostile provider text is inert on every page and in every JSON answer of the web app.

The emulator writes markup, bidi and zero-width characters, control characters, a forged
log line and instructions into every name, ticker, activity description and error text
(``sandbox.hostile``), over real HTTP. Pages escape the markup (it shows as text) and show
no invisible, bidi or control character; JSON answers carry the text, but never ``<`` as
markup; a provider's error text on a page is quoted, on one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import data
from sandbox.hostile import ANSI, BIDI, FORGED_LINE, MARKUP, SAMPLES
from tests.conftest import make_services, run_now
from tests.web_fixtures import logged_in_client, post

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IBKR = "interactive-brokers"
PAGES = [
    "/",
    "/activity",
    "/connections",
    "/costs",
    "/migrations",
    f"/migrations/{IBKR}",
    "/trades",
    "/snaptrade/",
    "/plaid/",
]
# What would act in a browser: the provider's markup, unescaped.
RAW_MARKUP = ("<script>alert", "<img src=x", "<svg onload", '"><svg')
# Every invisible, bidi and control character (a page keeps only line breaks, and our tabs).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Iterator[Any]:
    built = make_services(
        tmp_path, database_url, emulator, clock, background=run_now, TRADING_ENABLED="true"
    )
    yield built
    built.close()


def inert_page(where: str, response: Any) -> str:
    assert response.status_code == 200, (where, response.status_code)
    body = str(response.get_data(as_text=True))
    for fragment in RAW_MARKUP:
        assert fragment not in body, (where, fragment)
    found = UNSAFE.search(body)
    assert found is None, (where, repr(body[max(0, found.start() - 80) : found.end() + 20]))
    return body


def test_every_page_shows_hostile_provider_text_escaped_and_visible_as_it_is(
    hub: Any, emulator: Any
) -> None:
    emulator.controls.hostile.set("*", sample="everything")
    client = logged_in_client(hub)
    preview_id = hub.trading.preview_order(SCHWAB, "SCHB", "BUY", 1)["preview_id"]

    shown = {path: inert_page(path, client.get(path)) for path in PAGES}
    probed = inert_page("probe", post(client, "/connections/probe-trading"))
    shown[f"/trades/{preview_id}"] = inert_page("trade", client.get(f"/trades/{preview_id}"))
    checked = post(client, f"/migrations/{IBKR}/check")
    assert checked.status_code == 303
    run_page = checked.headers["Location"]
    shown[run_page] = inert_page(run_page, client.get(run_page))

    # The provider's words are on the pages, as text: escaped, not dropped.
    for path in ("/", "/activity", "/connections", "/costs", run_page):
        assert ESCAPED in shown[path], path
    # The support request to copy keeps its own lines, and a brokerage's name is one quote.
    request = re.search(r"<textarea[^>]*>(.*?)</textarea>", probed, re.S)
    assert request is not None
    lines = request.group(1).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Subject",
        "Client ID",
        "Affected authorizations",
        "Brokerages",
        "Error",
        "Observed",
        "Use case",
    ]


def test_json_answers_carry_the_text_but_never_markup(hub: Any, emulator: Any) -> None:
    emulator.controls.hostile.set("*", sample="markup")
    client = logged_in_client(hub)
    checked = post(client, f"/migrations/{IBKR}/check")

    for path in ("/api/positions", f"{checked.headers['Location']}/progress"):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        raw = answer.get_data(as_text=True)
        assert "<" not in raw and ">" not in raw, path
    # The same JSON to a parser: the provider's text, as it sent it.
    positions = client.get("/api/positions").get_json()["positions"]
    assert all(p["institution"].endswith(SAMPLES["markup"]) for p in positions)


def test_a_providers_error_text_on_a_page_is_quoted_on_one_line(hub: Any, emulator: Any) -> None:
    emulator.controls.hostile.set("error_texts", f"{FORGED_LINE}{MARKUP}{ANSI}{BIDI}")
    emulator.controls.fail("plaid /item/get", "INSTITUTION_DOWN")
    emulator.controls.fail("plaid /investments/holdings/get", "ITEM_LOGIN_REQUIRED")
    client = logged_in_client(hub)

    for path in ("/connections", "/"):
        body = inert_page(path, client.get(path))
        # The forged log line is inside the provider's quotation, never a line of its own.
        lines = [line for line in body.splitlines() if "order approved by the owner" in line]
        assert lines, path
        for line in lines:
            quotation = line[line.index("\u201c") : line.index("\u201d")]
            assert "order approved by the owner" in quotation and "alert(1)" in quotation
