"""Postgres stopped and started again: a 503 with a retry hint, then recovery by itself.

The app reaches Postgres through a TCP forwarder this test controls: stopping it closes
every open connection and refuses new ones, as a stopped server does; starting it again
on the same port is the server coming back. The app is never restarted or told.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import FakeClock, make_services
from tests.security.test_bad_input import mcp_session
from tests.web_fixtures import TEST_PASSWORD, csrf_token, logged_in_client, make_app

pytestmark = pytest.mark.postgres

OUTAGE_MESSAGE = "the database is not reachable; try again shortly"


class Forwarder:
    """127.0.0.1:<port> -> the database server, until stopped; restartable on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR
        listener.settimeout(0.05)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def forwarder(postgres_url: str) -> Iterator[Forwarder]:
    server = make_url(postgres_url)
    running = Forwarder((server.host or "127.0.0.1", server.port or 5432))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def hub(
    tmp_path: Path, postgres_url: str, forwarder: Forwarder, emulator: Any, clock: FakeClock
) -> Iterator[Any]:
    """The service layer on Postgres, reached only through the forwarder."""
    through = make_url(postgres_url).set(host="127.0.0.1", port=forwarder.port)
    built = make_services(tmp_path, through.render_as_string(hide_password=False), emulator, clock)
    yield built
    built.close()


def test_a_database_outage_is_a_503_with_a_retry_hint_then_recovers_by_itself(
    hub: Any, forwarder: Forwarder
) -> None:
    client = logged_in_client(hub)
    assert client.get("/api/positions?format=summary").status_code == 200
    assert client.get("/readyz").get_json() == {
        "ready": True,
        "checks": {"database": "ok", "schema": "ok", "secret_store": "ok"},
        "failing": [],
    }

    forwarder.stop()  # Postgres "stopped"

    page = client.get("/")
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert int(page.headers["Retry-After"]) > 0
    assert "try again" in page.get_data(as_text=True)
    api = client.get("/api/positions?format=summary")
    assert api.status_code == 503
    assert int(api.headers["Retry-After"]) > 0
    assert api.get_json() == {"error": {"type": "database_unavailable", "message": OUTAGE_MESSAGE}}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["failing"] == ["database"]
    assert ready.get_json()["checks"]["database"] == "the database is not reachable"
    assert str(forwarder.port) not in ready.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # liveness: the process is fine

    forwarder.start()  # Postgres "started again": the same app, untouched

    assert client.get("/api/positions?format=summary").status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_a_login_during_an_outage_is_a_503_not_a_wrong_password(
    hub: Any, forwarder: Forwarder
) -> None:
    hub.web_auth.passwords.set_password(TEST_PASSWORD)
    client = make_app(hub).test_client()
    form = {"email": hub.user_email, "password": TEST_PASSWORD, "csrf_token": csrf_token(client)}
    forwarder.stop()

    answer = client.post("/login", data=form)

    assert answer.status_code == 503
    assert answer.mimetype == "text/html"
    assert "Retry-After" in answer.headers
    forwarder.start()
    assert client.post("/login", data=form).status_code == 303


def test_a_tool_says_the_database_is_not_reachable_during_an_outage(
    hub: Any, forwarder: Forwarder
) -> None:
    with mcp_session(hub) as call:
        assert not call("get_positions", {"format": "summary"}).is_error
        forwarder.stop()
        result = call("get_positions", {"format": "summary"})
        forwarder.start()
        again = call("get_positions", {"format": "summary"})

    assert result.is_error
    text = " ".join(getattr(item, "text", "") for item in result.content)
    assert text.endswith(OUTAGE_MESSAGE)
    assert "internal error" not in text
    assert not again.is_error


def test_a_cli_command_says_in_one_line_that_the_database_is_not_reachable(
    hub: Any, forwarder: Forwarder
) -> None:
    runner = make_app(hub).test_cli_runner()
    forwarder.stop()

    result = runner.invoke(args=["positions", "--format", "summary"])

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert [json.loads(line) for line in lines[-1:]] == [
        {"error": {"type": "database_unavailable", "message": OUTAGE_MESSAGE}}
    ]
    assert len(lines) == 1, result.stderr
