"""What the browser tests share: Debian's headless Chromium through Playwright, a tab helper.

Imported explicitly by the browser tests (this is not a conftest). Chromium comes from
Debian's ``chromium`` package (``.ci/run`` installs it when missing); ``playwright
install`` is never used. Without it a browser test skips locally and FAILS in CI
(CI=true). Screenshots go to ``test-output/screenshots/`` at the repository root
(gitignored).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"
WAIT_MS = 20_000


def unavailable(reason: str) -> NoReturn:
    """Skip locally; in CI a missing browser is a failure, not a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: the browser test must run in CI")
    pytest.skip(reason)


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched by Playwright (sync API) and closed after."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -r requirements.txt)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Pages:
    """One browser tab plus what it should never see: CSP violations and script errors."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        # A failed load is reported by _response with its URL; anything else (a CSP
        # violation above all) is a problem.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        # Only our app's answers count: the emulator's stub pages have no favicon.
        if response.url.startswith(self.base_url) and response.status >= 400:
            self.problems.append(f"{response.status} for {response.url}")

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def text(self) -> str:
        return str(self.page.inner_text("body"))

    def log_in(self, email: str, password: str) -> None:
        """Through the login form, to the positions page."""
        self.goto("/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("button:has-text('Log in')")
        self.page.wait_for_url(f"{self.base_url}/")

    def overflow(self) -> int:
        """How many pixels the page is wider than the window (0 or less: it fits)."""
        return int(
            self.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )
