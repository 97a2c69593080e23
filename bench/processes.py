"""Child processes for the load harness: started in their own session, always stopped.

* :class:`Child` runs a command in a new session (process group) and reads its
  output on a thread, so the pipe never fills and the harness can wait for a
  given line (``wait_for_line``) with a deadline instead of sleeping.
* :meth:`Child.stop` sends SIGTERM to the group it started, waits, then SIGKILL:
  only the processes this harness started are ever signalled.
* :class:`EmulatorAdmin` drives a standalone emulator through its ``/_emulator``
  HTTP switches (latency, call counts).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


class HarnessError(RuntimeError):
    """Something the harness needs did not happen in time (with the child's last lines)."""


class Child:
    """One subprocess (and its process group), its output lines, and a sure stop."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path = ROOT,
        keep_lines: int = 400,
    ) -> None:
        self.name = name
        self._lines: deque[str] = deque(maxlen=keep_lines)
        self._seen = 0  # lines ever read (the deque forgets old ones)
        self._eof = False
        self._changed = threading.Condition()
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
            list(args),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: stop() reaches its workers too
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.process.stdout,), name=f"{name}-output", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._seen += 1
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float, *, count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` output lines matching ``pattern``; HarnessError after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout

        def matches() -> list[re.Match[str]]:
            found = [m for m in map(regex.search, self._lines) if m is not None]
            return found[:count]

        with self._changed:
            while True:
                found = matches()
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._changed.wait(left)
        state = "exited" if self.process.poll() is not None else "still running"
        raise HarnessError(
            f"{self.name} ({state}) did not print {count} line(s) matching {pattern!r} "
            f"within {timeout:g} s; its last lines:\n{self.tail()}"
        )

    def tail(self, lines: int = 30) -> str:
        with self._changed:
            return "\n".join(list(self._lines)[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the child's process group, then SIGKILL after ``timeout``; its exit code."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=timeout)
        # Workers that outlived their master (they should not) go too.
        self._signal_group(signal.SIGKILL)
        self._reader.join(timeout=2)
        return self.process.returncode

    def _signal_group(self, signum: int) -> None:
        # The group id is the child's pid (start_new_session): only what we started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll ``check`` until it is true, at most ``timeout`` seconds (for a port or /healthz)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise HarnessError(f"{what} did not happen within {timeout:g} s")
        time.sleep(poll)


def http_json(
    method: str, url: str, body: Mapping[str, Any] | None = None, timeout: float = 10.0
) -> Any:
    """A loopback JSON request (the harness only ever talks to 127.0.0.1)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback URLs only, not {url!r}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (loopback http URL checked above)
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        return json.load(answer)


def answers(url: str) -> bool:
    try:
        http_json("GET", url, timeout=2)
    except (OSError, ValueError):
        return False
    return True


class EmulatorAdmin:
    """A standalone emulator's HTTP switches (``/_emulator/...``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.plaid_url = base_url + "/plaid"
        self.snaptrade_url = base_url + "/snaptrade"

    def health(self) -> dict[str, Any]:
        return dict(http_json("GET", f"{self.base_url}/_emulator/health"))

    def set_latency(self, endpoint: str, seconds: float) -> None:
        http_json(
            "POST",
            f"{self.base_url}/_emulator/latency",
            {"endpoint": endpoint, "seconds": seconds},
        )

    def calls(self, endpoint: str | None = None, subject: str | None = None) -> int:
        query = {k: v for k, v in (("endpoint", endpoint), ("subject", subject)) if v is not None}
        url = f"{self.base_url}/_emulator/calls"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return int(http_json("GET", url)["calls"])


@contextlib.contextmanager
def standalone_emulator(
    python: str, state_path: Path, env: Mapping[str, str], timeout: float = 30.0
) -> Iterator[tuple[Child, EmulatorAdmin]]:
    """``python -m sandbox --port 0 --state PATH --allow-admin``: the port is read from its
    first lines; the admin switches (latency, counters) are what the benchmark drives."""
    child = Child(
        "emulator",
        [python, "-m", "sandbox", "--port", "0", "--state", str(state_path), "--allow-admin"],
        env,
    )
    try:
        (match,) = child.wait_for_line(r"^plaid (http://127\.0\.0\.1:\d+)/plaid$", timeout)
        admin = EmulatorAdmin(match.group(1))
        if admin.health().get("pid") != child.pid:
            raise HarnessError("another emulator answered on the port ours printed")
        yield child, admin
    finally:
        child.stop()
