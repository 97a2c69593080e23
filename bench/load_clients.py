"""The load run's clients: browser-like threads with keep-alive connections and a session
each, logged in one at a time, then reading positions back to back for the run's window."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

from bench.load_figures import LoadConfig, Sample
from bench.processes import HarnessError

POSITIONS_PATH = "/api/positions?format=summary"
SESSION_COOKIE = "brokerage_hub_session"


class WebClient:
    """One browser-like client: its own keep-alive connection and session cookie."""

    def __init__(self, base_url: str, timeout: float) -> None:
        import urllib3

        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", base_url)
        if match is None:
            raise ValueError(f"loopback URLs only, not {base_url!r}")
        self._pool = urllib3.HTTPConnectionPool(
            "127.0.0.1",
            int(match.group(1)),
            maxsize=1,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )
        self._cookie = ""

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self._cookie:
            headers["Cookie"] = self._cookie
        response = self._pool.request(method, path, headers=headers, redirect=False, **kwargs)
        for header in response.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == SESSION_COOKIE:
                self._cookie = f"{SESSION_COOKIE}={rest.split(';', 1)[0]}"
        return response

    def log_in(self, email: str, password: str) -> None:
        page = self._request("GET", "/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.data.decode())
        if page.status != 200 or found is None:
            raise HarnessError(f"GET /login answered {page.status} without a CSRF token")
        answer = self._request(
            "POST",
            "/login",
            body=urlencode({"email": email, "password": password, "csrf_token": found[1]}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if answer.status != 303:
            raise HarnessError(f"POST /login answered {answer.status}, not 303")

    def positions(self) -> Sample:
        started = time.monotonic()
        try:
            response = self._request("GET", POSITIONS_PATH)
            seconds = time.monotonic() - started
            if response.status != 200:
                return Sample(started, seconds, False, f"HTTP {response.status}")
            return Sample(started, seconds, *_check_answer(json.loads(response.data)))
        except Exception as exc:  # any failure is counted and reported, never raised
            return Sample(started, time.monotonic() - started, False, type(exc).__name__)

    def close(self) -> None:
        self._pool.close()


def _check_answer(payload: dict[str, Any]) -> tuple[bool, str | None]:
    """A complete answer: both providers fresh (not stale, no error) and positions present."""
    info = payload.get("cache_info") or {}
    for provider in ("plaid", "snaptrade"):
        entry = info.get(provider)
        if not entry:
            return False, f"degraded: no cache_info for {provider}"
        if entry.get("stale") or entry.get("error"):
            return False, f"degraded: {provider} stale={entry.get('stale')}"
    if not payload.get("position_count"):
        return False, "degraded: no positions"
    return True, None


def run_clients(
    base_url: str, email: str, password: str, config: LoadConfig
) -> tuple[list[Sample], float]:
    """Log every client in, then load for ``config.duration`` seconds; (samples, elapsed)."""
    clients = [WebClient(base_url, config.request_timeout) for _ in range(config.clients)]
    per_client: list[list[Sample]] = [[] for _ in clients]
    login_errors: list[BaseException] = []
    window: dict[str, float] = {}

    def open_window() -> None:
        # Runs once, before any party is released: every client sees the same window.
        window["start"] = time.monotonic()
        window["end"] = window["start"] + config.duration

    go = threading.Barrier(config.clients + 1, action=open_window, timeout=config.boot_timeout)
    # One login at a time, as people would: the login brake counts a check in flight
    # against its address, so 16 simultaneous logins from one address would be braked.
    one_login_at_a_time = threading.Lock()

    def client_main(index: int) -> None:
        client = clients[index]
        try:
            with one_login_at_a_time:
                client.log_in(email, password)
        except BaseException as exc:
            login_errors.append(exc)
            go.abort()
            return
        try:
            go.wait()
        except threading.BrokenBarrierError:
            return
        end = window["end"]
        samples = per_client[index]
        while time.monotonic() < end:
            samples.append(client.positions())

    threads = [
        threading.Thread(target=client_main, args=(i,), name=f"load-client-{i}", daemon=True)
        for i in range(config.clients)
    ]
    for thread in threads:
        thread.start()
    try:
        # Every client is logged in before the clock starts: the window is positions only.
        try:
            go.wait()
        except threading.BrokenBarrierError:
            raise HarnessError(f"a client could not log in: {login_errors[:1]}") from None
        for thread in threads:
            thread.join(timeout=config.duration + config.request_timeout + 10)
        if any(thread.is_alive() for thread in threads):
            raise HarnessError("a client did not finish within its request timeout")
    finally:
        for client in clients:
            client.close()
    samples = [sample for batch in per_client for sample in batch]
    finished = max((s.started + s.seconds for s in samples), default=window["start"])
    return samples, finished - window["start"]
