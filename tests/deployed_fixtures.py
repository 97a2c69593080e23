"""Gunicorn serving the app on Postgres, as the README deploys it, for tests that need
several real worker processes; and the ``flask --app app`` commands beside it.

Nothing sleeps: a server is awaited through its output lines (gunicorn's "Listening at",
each worker's ready line from ``bench.gunicorn_conf``), each with a deadline, and is
stopped (its whole process group) on exit, also when a test fails.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.gunicorn_conf import READY_LINE
from bench.processes import Child

PYTHON = sys.executable
THREADS = 4
BOOT_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0
ACCESS_LOG_FORMAT = "%(p)s %(m)s %(U)s %(s)s"  # "<worker pid> METHOD /path STATUS"
ACCESS_LINE = re.compile(r"^<(\d+)> (\S+) (\S+) (\d{3})$")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Served:
    pid: int
    method: str
    path: str
    status: int


@dataclass
class Gunicorn:
    name: str
    child: Child
    access_log: Path
    address: tuple[str, int] = ("127.0.0.1", 0)
    pids: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def stop(self) -> None:
        """SIGTERM to its process group (the workers finish and flush their access lines)."""
        self.child.stop()

    def served(self) -> list[Served]:
        """Every request in its access log (read after :meth:`stop`: nothing is in flight)."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        served = []
        for line in lines:
            match = ACCESS_LINE.match(line)
            assert match is not None, f"{self.name}: unexpected access log line {line!r}"
            served.append(Served(int(match[1]), match[2], match[3], int(match[4])))
        return served


@contextmanager
def gunicorn(
    name: str, env: dict[str, str], workers: int, folder: Path, *, port: int = 0
) -> Iterator[Gunicorn]:
    """``gunicorn 'app:create_app()'`` with ``workers`` gthread workers on ``port`` (0: a free
    one), once every worker has loaded the app; stopped (its whole process group) on exit."""
    access_log = folder / f"access-{name}.log"
    child = Child(
        f"gunicorn {name}",
        [
            PYTHON,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(THREADS),
            "--keep-alive",
            "0",  # one request per connection: the proxy routes per request
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--no-control-socket",
            "--config",
            "python:bench.gunicorn_conf",
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            ACCESS_LOG_FORMAT,
            "app:create_app()",
        ],
        env,
    )
    server = Gunicorn(name, child, access_log)
    try:
        (listening,) = child.wait_for_line(
            r"Listening at: http://(127\.0\.0\.1):(\d+)", BOOT_TIMEOUT
        )
        server.address = (listening[1], int(listening[2]))
        ready = child.wait_for_line(
            re.escape(READY_LINE) + r" \(pid (\d+)\)", BOOT_TIMEOUT, count=workers
        )
        server.pids = {int(match[1]) for match in ready}
        assert len(server.pids) == workers, child.tail()
        yield server
    finally:
        server.stop()


def flask_command(env: dict[str, str], *args: str) -> str:
    """``flask --app app <args>`` in ``env``; its output (it must succeed)."""
    child = Child(f"flask {args[0]}", [PYTHON, "-m", "flask", "--app", "app", *args], env)
    try:
        code = child.process.wait(timeout=CLI_TIMEOUT)
    finally:
        child.stop()
    output = child.tail(50)
    assert code == 0, f"flask {' '.join(args)} exited {code}:\n{output}"
    return output


def log_in(client: requests.Session, base_url: str, email: str, password: str) -> requests.Response:
    """The login form, as a browser posts it (GET for the CSRF token, then POST)."""
    page = client.get(f"{base_url}/login", timeout=30)
    token = CSRF_FIELD.search(page.text)
    assert token is not None, page.status_code
    return client.post(
        f"{base_url}/login",
        data={"email": email, "password": password, "csrf_token": token[1]},
        allow_redirects=False,
        timeout=60,
    )
