"""A page opened on another origin than PUBLIC_BASE_URL says so, before a flow breaks; the
log says it once per origin; ``make run`` listens where PUBLIC_BASE_URL points on loopback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.run_address import run_address
from routes.origin import OriginLog, origin_of
from settings import PROJECT_ROOT
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import log_in, make_app

EMBEDDED = "http://127.0.0.1:5000"  # the embedded default's PUBLIC_BASE_URL
PUBLIC = "https://hub.example.com"


def notice(page: Any) -> str | None:
    """The text of the page's wrong-origin notice, or None."""
    html = page.get_data(as_text=True)
    if 'class="origin-notice"' not in html:
        return None
    return " ".join(html.split('class="origin-notice"', 1)[1].split("</p>", 1)[0].split())


def origin_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "routes.origin"]


@pytest.fixture
def hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Any:
    built = make_services(tmp_path, sqlite_url, emulator, clock)  # the embedded default
    yield built
    built.close()


def test_the_login_page_on_another_port_names_both_origins_and_the_setting(hub: Any) -> None:
    client = make_app(hub).test_client()
    text = notice(client.get("/login", base_url="http://127.0.0.1:8000"))
    assert text is not None
    assert "http://127.0.0.1:8000" in text and EMBEDDED in text
    assert "<code>PUBLIC_BASE_URL=http://127.0.0.1:8000</code>" in text


def test_every_page_after_login_carries_the_notice_too(hub: Any) -> None:
    client = make_app(hub).test_client()
    client.get("/login", base_url="http://localhost:5000")
    log_in(client, hub)
    text = notice(client.get("/plaid/", base_url="http://localhost:5000"))
    assert text is not None and "http://localhost:5000" in text and EMBEDDED in text


def test_a_page_on_public_base_url_has_no_notice(hub: Any) -> None:
    client = make_app(hub).test_client()
    assert notice(client.get("/login", base_url=EMBEDDED)) is None
    assert notice(client.get("/login", base_url=f"{EMBEDDED}/")) is None


def test_a_default_port_written_out_is_the_same_origin(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    public = make_services(tmp_path, sqlite_url, emulator, clock, PUBLIC_BASE_URL=f"{PUBLIC}/")
    try:
        client = make_app(public).test_client()
        assert notice(client.get("/login", base_url="https://HUB.example.com:443")) is None
        assert notice(client.get("/login", base_url="https://hub.example.com:8443")) is not None
    finally:
        public.close()


def test_a_tls_proxy_nobody_trusts_is_not_taken_for_a_wrong_origin(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    public = make_services(tmp_path, sqlite_url, emulator, clock, PUBLIC_BASE_URL=PUBLIC)
    try:
        client = make_app(public).test_client()
        # Plain http from the proxy on the public host: the browser is on https.
        assert notice(client.get("/login", base_url="http://hub.example.com")) is None
        # Another host is still another origin.
        text = notice(client.get("/login", base_url="http://10.0.0.5:8000"))
        assert text is not None and "http://10.0.0.5:8000" in text
    finally:
        public.close()


def test_behind_a_trusted_proxy_the_origin_is_the_one_the_browser_asked_for(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    proxied = make_services(
        tmp_path, sqlite_url, emulator, clock, PUBLIC_BASE_URL=PUBLIC, TRUSTED_PROXIES="1"
    )
    try:
        client = make_app(proxied).test_client()
        behind = "http://10.0.0.5:8000"  # the proxy's upstream, as the app is reached
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.com"}
        assert notice(client.get("/login", base_url=behind, headers=forwarded)) is None
        elsewhere = {**forwarded, "X-Forwarded-Host": "hub.example.com:8443"}
        text = notice(client.get("/login", base_url=behind, headers=elsewhere))
        assert text is not None and "https://hub.example.com:8443" in text
    finally:
        proxied.close()


def test_each_wrong_origin_is_logged_once(hub: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="routes.origin")
    client = make_app(hub).test_client()
    for _ in range(3):
        client.get("/login", base_url="http://127.0.0.1:8000")
    client.get("/login", base_url=EMBEDDED)
    [line] = origin_lines(caplog)
    assert "http://127.0.0.1:8000" in line and EMBEDDED in line and "PUBLIC_BASE_URL" in line
    client.get("/login", base_url="http://localhost:8000")
    assert len(origin_lines(caplog)) == 2


def test_the_origin_log_stops_naming_origins_past_its_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="routes.origin")
    logged = OriginLog(limit=2)
    firsts = [logged.first_time(f"http://forged-{n}.example") for n in (1, 1, 2, 3, 4)]
    assert firsts == [True, False, True, False, False]
    assert len(origin_lines(caplog)) == 1  # "... further ones are not logged", once


@pytest.mark.parametrize(
    ("scheme", "netloc", "origin"),
    [
        ("HTTP", "LocalHost:80", "http://localhost"),
        ("https", "hub.example.com:443", "https://hub.example.com"),
        ("http", "127.0.0.1:5001", "http://127.0.0.1:5001"),
        ("http", "[::1]:5000", "http://[::1]:5000"),
        ("http", "127.0.0.1:notaport", "http://127.0.0.1:notaport"),
    ],
)
def test_an_origin_is_written_one_way(scheme: str, netloc: str, origin: str) -> None:
    assert origin_of(scheme, netloc) == origin


@pytest.mark.parametrize(
    ("public_base_url", "address"),
    [
        ("http://127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("http://127.0.0.1:5001/", ("127.0.0.1", 5001)),
        ("http://localhost:8001", ("127.0.0.1", 8001)),
        ("http://127.0.0.2:5002", ("127.0.0.2", 5002)),
        ("http://[::1]:5003", ("::1", 5003)),
        ("http://127.0.0.1", ("127.0.0.1", 80)),
        # Not loopback http: served through a proxy or a real server, not by make run.
        ("https://127.0.0.1:5443", ("127.0.0.1", 5000)),
        ("http://hub.example.com:8000", ("127.0.0.1", 5000)),
        ("http://192.0.2.10:8000", ("127.0.0.1", 5000)),
        ("", ("127.0.0.1", 5000)),
    ],
)
def test_make_run_listens_on_public_base_urls_loopback_address(
    public_base_url: str, address: tuple[str, int]
) -> None:
    assert run_address(public_base_url) == address


def test_make_run_reads_public_base_url_from_the_settings(tmp_path: Path) -> None:
    """As ``make run`` calls it: the app's settings (environment first), one line of flags."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PLAID_", "SNAPTRADE_", "PUBLIC_BASE_URL"))
    }
    env.update(INSTANCE_DIR=str(tmp_path), PUBLIC_BASE_URL="http://127.0.0.1:5001")
    answer = subprocess.run(
        [sys.executable, "-m", "cli.run_address"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (answer.returncode, answer.stdout) == (0, "--host 127.0.0.1 --port 5001\n")
    env["PUBLIC_BASE_URL"] = "127.0.0.1:5001"  # not a URL: the settings' own one line, exit 2
    refused = subprocess.run(
        [sys.executable, "-m", "cli.run_address"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("brokerage-hub: PUBLIC_BASE_URL=")
