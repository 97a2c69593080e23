"""The README's deployment, for every flow: gunicorn workers on Postgres, driven by Chromium.

Two gunicorn servers run ``app:create_app()`` on one throwaway Postgres database, one
instance folder and one emulator (started in this process, reached over HTTP like a
provider):

* **A**, the README's deployment: 4 gthread workers with 4 threads each;
* **B**: 2 more workers of the same app, the same settings.

A routing proxy in this test stands in front of both, and ``PUBLIC_BASE_URL`` is its
address, so every callback a provider gets leads back through it. It sends what may
only work if no flow lives in one process's memory to B, everything else to A:

* ``/api/plaid/link/...`` (the progress page's polls) and ``GET /plaid/link/...`` (the
  progress page itself, also where Hosted Link sends the person back) go to B, while the
  ``POST /plaid/link`` that starts the link goes to A;
* ``/snaptrade/connected/...`` (the portal's return) goes to B, while the
  ``POST /snaptrade/connect`` that opens the portal goes to A.

The first test drives that in headless Chromium for a new user: log in, link Plaid
through the emulator's Hosted Link page, connect SnapTrade through the emulator's portal,
see both on ``/``, log out and be refused. The second sends 60 wrong passwords at once
to A's 4 workers: at most 5 are checked, the rest wait (429), and ``flask --app app
clear-login-brake`` lets the owner back in.

Both servers run with ``--keep-alive 0``, so every connection carries one request and the
proxy routes per request (checked, not assumed). Who served what is read from gunicorn's access
logs (``%(p)s`` is the worker's pid) after both have stopped, and compared with the pids
each worker printed when it was ready: which process answered is certain, not likely.

Nothing sleeps: children are awaited through their output lines (gunicorn's "Listening
at", each worker's ready line from ``bench.gunicorn_conf``) and the browser through the
page's elements, each with a deadline; every process started here is stopped (its
process group), also when a test fails.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import select
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from bench.load import app_environment
from tests.browser_fixtures import WAIT_MS, Pages, launched_chromium
from tests.conftest import find_secrets, secrets_in_database
from tests.deployed_fixtures import (
    BOOT_TIMEOUT,
    CSRF_FIELD,
    Gunicorn,
    Served,
    flask_command,
    gunicorn,
    log_in,
)
from tests.web_fixtures import TEST_PASSWORD

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USER = "someone@example.com"  # a new user: nothing linked at either provider yet
A_WORKERS = 4  # the README's deployment
B_WORKERS = 2
# Plaid is asked about a link at most once per poll interval (10 s by default), whoever
# polls: the link finishes at the first poll after that, so allow well over one interval.
LINK_DONE_MS = 60_000
GUESSES = 60
PER_CLIENT_LIMIT = 5  # the README: 5 failed logins per client address per 15 minutes


# --- the routing proxy ------------------------------------------------------------------


def backend_for(method: str, path: str) -> str:
    """Where a request goes: what must survive a change of process to B, the rest to A."""
    if path.startswith(("/api/plaid/link/", "/snaptrade/connected/")):
        return "B"
    if method == "GET" and path.startswith("/plaid/link/"):
        return "B"
    return "A"


@dataclass
class Routed:
    """One proxied connection: its one request, where it went, and how the answer began."""

    method: str
    path: str
    backend: str
    status: int | None = None
    closes: bool = False  # the answer said "Connection: close"
    abandoned: bool = False  # the browser went away first (it navigated elsewhere)


class RoutingProxy:
    """A TCP proxy on 127.0.0.1 that sends each connection's request to the backend
    ``choose(method, path)`` names. No balancing: the same request always goes to the
    same place. The backends close every connection after one answer (``--keep-alive
    0``), so one connection is one request and routing is per request."""

    HEAD_LIMIT = 64 * 1024
    IDLE_SECONDS = 60.0

    def __init__(self, choose: Callable[[str, str], str]) -> None:
        self._choose = choose
        self.backends: dict[str, tuple[str, int]] = {}
        self.routed: list[Routed] = []
        self.errors: list[str] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept, name="routing-proxy", daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:  # wakes connection threads blocked on a read
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._open.add(sock)
        return sock

    def _forget(self, *socks: socket.socket) -> None:
        for sock in socks:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def _serve(self, client: socket.socket) -> None:
        self._track(client).settimeout(self.IDLE_SECONDS)
        backend: socket.socket | None = None
        try:
            head = self._read_head(client)
            if head is None:
                return  # a connection opened ahead of need and never used (Chromium does)
            method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
            path = target.split("?", 1)[0]
            record = Routed(method, path, self._choose(method, path))
            with self._lock:
                self.routed.append(record)
            backend = self._track(
                socket.create_connection(self.backends[record.backend], self.IDLE_SECONDS)
            )
            backend.sendall(head)
            self._pipe(client, backend, record)
        except Exception as exc:  # reported by the test, never swallowed
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._forget(client, *([backend] if backend is not None else []))

    def _read_head(self, client: socket.socket) -> bytes | None:
        """Everything the client sent up to the end of the request's header block."""
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = client.recv(65536)
            except (TimeoutError, OSError):
                return None
            if not chunk:
                return None
            data += chunk
            if len(data) > self.HEAD_LIMIT:
                raise ValueError("request head too large")
        return data

    def _pipe(self, client: socket.socket, backend: socket.socket, record: Routed) -> None:
        """Both ways until the backend has answered and closed the connection."""
        answer_head = b""
        reading = [client, backend]
        while True:
            ready, _, _ = select.select(reading, [], [], self.IDLE_SECONDS)
            if not ready:
                raise TimeoutError(f"no answer to {record.method} {record.path}")
            if backend in ready:
                chunk = backend.recv(65536)
                if not chunk:
                    return  # the backend closed: one request, one answer, done
                if record.status is None:
                    answer_head += chunk
                    if b"\r\n\r\n" in answer_head:
                        head = answer_head.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                        record.status = int(head.split(" ", 2)[1])
                        record.closes = bool(
                            re.search(r"^connection:\s*close\s*$", head, re.I | re.M)
                        )
                try:
                    client.sendall(chunk)
                except OSError:
                    record.abandoned = True
                    return
            if client in ready:
                try:
                    chunk = client.recv(65536)
                except OSError:  # reset by the browser
                    chunk = b""
                if chunk:
                    backend.sendall(chunk)  # the rest of a request body
                else:
                    reading.remove(client)
                    backend.shutdown(socket.SHUT_WR)


# --- the processes ----------------------------------------------------------------------


def closes_after_one_answer(address: tuple[str, int]) -> str:
    """Ask for keep-alive; the header block of the answer, read until the server closed."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            "Connection: keep-alive\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):  # a timeout here means it kept the connection
            answer += chunk
    return answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")


@dataclass
class Deployment:
    env: dict[str, str]
    database_url: str
    a: Gunicorn
    b: Gunicorn
    proxy: RoutingProxy

    def stop_servers(self) -> None:
        self.a.stop()
        self.b.stop()

    def outputs(self) -> str:
        return "\n".join(
            [self.a.child.tail(400), self.b.child.tail(400)]
            + [path.read_text() for path in (self.a.access_log, self.b.access_log) if path.exists()]
        )


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str, emulator: Any) -> Iterator[Deployment]:
    """Migrated, a password set, A and B serving, the proxy routing to them."""
    with ExitStack() as stack:
        proxy = RoutingProxy(backend_for)
        stack.callback(proxy.stop)
        env = app_environment(postgres_url, tmp_path / "instance", emulator, secrets.token_hex(32))
        env.update(
            DEFAULT_USER_EMAIL=USER,
            PUBLIC_BASE_URL=proxy.url,  # every provider callback comes back through the proxy
            TRUSTED_PROXIES="0",
            SESSION_IDLE_MINUTES="60",
            SESSION_MAX_HOURS="12",
            ALLOW_MIXED_ENVIRONMENTS="false",
        )
        assert "up to date" in flask_command(env, "migrate")
        assert f"password set for {USER}" in flask_command(
            {**env, "BROKERAGE_HUB_NEW_PASSWORD": TEST_PASSWORD}, "set-password"
        )
        a = stack.enter_context(gunicorn("A", env, A_WORKERS, tmp_path))
        b = stack.enter_context(gunicorn("B", env, B_WORKERS, tmp_path))
        proxy.backends.update(A=a.address, B=b.address)
        yield Deployment(env, postgres_url, a, b, proxy)


@pytest.fixture
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


# --- the tests --------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_new_user_links_both_providers_in_chromium_while_polls_and_returns_land_on_other_workers(
    browser: Any, deployment: Deployment, emulator: Any
) -> None:
    base_url = deployment.proxy.url
    a, b = deployment.a, deployment.b

    # One request per connection is what makes the proxy's routing per request.
    for server in (a, b):
        head = closes_after_one_answer(server.address)
        assert head.startswith("HTTP/1.1 200"), head
        assert re.search(r"^connection:\s*close\s*$", head, re.I | re.M), head

    context = browser.new_context()
    tab = Pages(context.new_page(), base_url)
    page = tab.page
    page.set_default_timeout(WAIT_MS)

    # Log in (the first visit is sent to the login page).
    tab.goto("/")
    assert page.url.startswith(f"{base_url}/login")
    page.fill("input[name=email]", USER)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base_url}/")
    assert "No positions yet" in tab.text()

    # Plaid: started on A, its progress page and polls on B, Hosted Link on the emulator.
    tab.goto("/plaid/")
    page.click("button:has-text('Link an institution with Plaid')")
    page.wait_for_selector("#open-plaid-link")
    job_id = page.url.rsplit("/plaid/link/", 1)[1]
    tab.shot("deployed-01-plaid-link-waiting")
    page.click("#open-plaid-link")
    page.wait_for_selector("button[value=merrill-lynch]")
    page.click("button[value=merrill-lynch]")
    page.wait_for_url(f"{base_url}/plaid/link/{job_id}")
    page.wait_for_selector("#link-progress[data-status=done]", timeout=LINK_DONE_MS)
    assert "Merrill Lynch is linked" in tab.text()
    tab.shot("deployed-02-plaid-link-done")

    # SnapTrade: the portal opened on A, the return on B.
    tab.goto("/snaptrade/")
    page.select_option("select[name=connection_type]", "read")
    page.click("button:has-text('Connect a brokerage with SnapTrade')")
    page.wait_for_selector("#open-snaptrade-portal")
    flow_id = page.url.rsplit("/snaptrade/connect/", 1)[1]
    page.click("#open-snaptrade-portal")
    page.wait_for_selector("button[value=charles-schwab]")
    page.click("button[value=charles-schwab]")
    page.wait_for_url(f"{base_url}/snaptrade/")
    assert "SnapTrade connected Charles Schwab; positions are up to date." in tab.text()
    tab.shot("deployed-03-snaptrade-connected")

    # Positions of both, served by A, which served neither link's finish.
    tab.goto("/")
    text_on_page = tab.text()
    assert "Merrill Lynch" in text_on_page and "Charles Schwab" in text_on_page
    tab.shot("deployed-04-positions")
    assert page.request.get(f"{base_url}/api/positions").status == 200

    # Log out and be refused, also with the cookie kept from before.
    kept = context.storage_state()
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base_url}/login")
    assert "You are logged out." in tab.text()
    tab.goto("/connections")
    assert page.url.startswith(f"{base_url}/login")
    assert page.request.get(f"{base_url}/api/positions").status == 401
    replayed = browser.new_context(storage_state=kept)
    assert replayed.request.get(f"{base_url}/api/positions").status == 401
    replayed.close()
    assert tab.problems == []

    # Exactly one public token exchange, whichever of B's workers got there.
    assert emulator.controls.calls("plaid /item/public_token/exchange") == 1

    # Who served what: read once both have stopped (every access line written).
    deployment.stop_servers()
    assert deployment.proxy.errors == []
    answered = [r for r in deployment.proxy.routed if not r.abandoned]
    assert answered and all(r.status and r.closes for r in answered), [
        r for r in answered if not (r.status and r.closes)
    ]
    served_a, served_b = a.served(), b.served()
    assert {s.pid for s in served_a} <= a.pids, "a worker of A was replaced mid-test"
    assert {s.pid for s in served_b} <= b.pids, "a worker of B was replaced mid-test"
    assert a.pids.isdisjoint(b.pids)

    def requests_to(served: list[Served], method: str, path: str) -> list[Served]:
        return [s for s in served if s.method == method and s.path == path]

    plaid_start = requests_to(served_a, "POST", "/plaid/link")
    assert [s.status for s in plaid_start] == [303], served_a
    portal_open = requests_to(served_a, "POST", "/snaptrade/connect")
    assert [s.status for s in portal_open] == [303], served_a

    polls = requests_to(served_b, "GET", f"/api/plaid/link/{job_id}")
    progress_pages = requests_to(served_b, "GET", f"/plaid/link/{job_id}")
    portal_return = requests_to(served_b, "GET", f"/snaptrade/connected/{flow_id}")
    assert polls and all(s.status == 200 for s in polls), served_b
    # The page after the start, Hosted Link's return to it, and its reload once done.
    assert len(progress_pages) >= 3 and all(s.status == 200 for s in progress_pages), served_b
    assert [s.status for s in portal_return] == [303], served_b
    for later in (*polls, *progress_pages, *portal_return):
        assert later.pid in b.pids and later.pid not in {s.pid for s in plaid_start + portal_open}
    # ...and A never saw any of them.
    assert not [s for s in served_a if backend_for(s.method, s.path) == "B"], served_a
    # Not asserted: that the polls reached both of B's workers. The kernel hands each
    # connection to whichever worker accepts first; usually both do, but nothing makes
    # it certain.

    # Nothing secret in any process's output or access log, nor in any table.
    assert find_secrets(deployment.outputs()) == []
    engine = create_engine(deployment.database_url)
    try:
        assert secrets_in_database(engine) == []
    finally:
        engine.dispose()


@pytest.mark.timeout(240)
def test_sixty_parallel_wrong_passwords_from_one_address_on_four_workers_check_at_most_five(
    deployment: Deployment,
) -> None:
    base_url = deployment.a.url  # gunicorn A: the README's 4 workers, no proxy
    answers: list[Any] = [None] * GUESSES
    go = threading.Barrier(GUESSES, timeout=BOOT_TIMEOUT)

    def guess(index: int) -> None:
        with requests.Session() as browser_like:
            try:
                page = browser_like.get(f"{base_url}/login", timeout=30)
                token = CSRF_FIELD.search(page.text)
                assert page.status_code == 200 and token is not None, page.status_code
                go.wait()
                answers[index] = browser_like.post(
                    f"{base_url}/login",
                    data={
                        "email": USER,
                        "password": f"wrong guess {index}",
                        "csrf_token": token[1],
                    },
                    allow_redirects=False,
                    timeout=60,
                )
            except BaseException as exc:
                go.abort()
                answers[index] = exc

    threads = [threading.Thread(target=guess, args=(i,), daemon=True) for i in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    problems = [a for a in answers if not isinstance(a, requests.Response)]
    assert problems == [], problems[:3]

    # Which of A's workers checked or refused each guess is the kernel's choice (the access
    # log shows 3 or 4 of them); the brake holds because the reservation is in Postgres.
    statuses = Counter(answer.status_code for answer in answers)
    checked = statuses[401]  # a wrong password that was checked
    assert 1 <= checked <= PER_CLIENT_LIMIT, statuses
    assert statuses[429] == GUESSES - checked, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert re.fullmatch(r"[1-9]\d*", answer.headers.get("Retry-After", "")), answer.headers

    # Each checked wrong password left exactly one 'failed' row; nothing stays reserved.
    engine = create_engine(deployment.database_url)
    try:
        with engine.connect() as conn:
            outcomes: dict[str, int] = {
                str(outcome): int(count)
                for outcome, count in conn.execute(
                    text("SELECT outcome, count(*) FROM login_attempts GROUP BY outcome")
                )
            }
    finally:
        engine.dispose()
    assert outcomes == {"failed": checked}, outcomes

    # The right password waits too (no exemptions) until the owner clears the brake.
    with requests.Session() as owner:
        assert log_in(owner, base_url, USER, TEST_PASSWORD).status_code == 429
    assert "login brake cleared" in flask_command(deployment.env, "clear-login-brake")
    with requests.Session() as owner:
        answer = log_in(owner, base_url, USER, TEST_PASSWORD)
        assert answer.status_code == 303, answer.status_code
        assert owner.get(f"{base_url}/api/positions", timeout=60).status_code == 200
