"""Running the emulator: start one in this process, or reuse the one another
process named in the instance's pointer file, and stop it again.

One server on 127.0.0.1 answers both providers and the admin switches (see
``sandbox.wsgi``)::

    http://127.0.0.1:PORT/plaid/...       Plaid API (POST JSON)
    http://127.0.0.1:PORT/snaptrade/...   SnapTrade API (signed requests)
    http://127.0.0.1:PORT/_emulator/...   health, faults, latency, holds, counters, switches

Public API: :class:`EmulatorHandle`, :func:`start_emulator`, :func:`ensure_emulator`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.admin import SERVICE_NAME
from sandbox.faults.controls import Controls
from sandbox.state import StateStore
from sandbox.wsgi import DropAwareApp, EmulatorApp

HOST = "127.0.0.1"  # loopback only: the emulator has no real security
POINTER_FILE = "emulator.json"
STATE_FILE = "emulator-state.json"


class EmulatorHandle:
    """Where a running emulator answers, and how to steer and stop it."""

    def __init__(
        self,
        base_url: str,
        controls: Controls | None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        self.base_url = base_url
        self.plaid_url = base_url + "/plaid"
        self.snaptrade_url = base_url + "/snaptrade"
        # None when the emulator runs in another process: use its /_emulator/ HTTP switches.
        self.controls = controls
        self._stop = stop

    def stop(self) -> None:
        """Stop the server if this handle started it (a reused one is left running)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle({self.base_url!r}, in_process={self.controls is not None})"


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log: the emulator runs inside the app and the MCP server (stdout is MCP's)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def start_emulator(
    port: int = 0,
    state_path: str | os.PathLike[str] | None = None,
    clock: Callable[[], float] | None = None,
    *,
    allow_admin: bool = True,
    snaptrade_webhook_url: str | None = None,
) -> EmulatorHandle:
    """Serve the emulator on 127.0.0.1:``port`` (0 = a free port) from a daemon thread.

    For tests and benchmarks: ``state_path`` is the JSON file shared with other
    emulator processes (None: memory only); ``clock`` (unix seconds) drives SnapTrade
    timestamp checks and trade-id expiry, so tests can move time. The HTTP admin
    switches (``/_emulator/...``) answer unless ``allow_admin`` is False.
    ``snaptrade_webhook_url`` is the webhook URL of SnapTrade's dashboard (None: SnapTrade
    sends no webhooks until ``controls.set_snaptrade_webhook_url``).
    """
    base_url, controls, stop = _serve(port, state_path, clock or time.time, allow_admin)
    try:
        controls.set_snaptrade_webhook_url(snaptrade_webhook_url)
    except ValueError:
        stop()
        raise
    return EmulatorHandle(base_url, controls, stop)


def ensure_emulator(instance_dir: str | os.PathLike[str]) -> EmulatorHandle:
    """Reuse the emulator named in ``instance_dir/emulator.json`` or start one here.

    The web app and the MCP server both call this: whichever starts first serves
    the other. A started emulator keeps its state in ``emulator-state.json`` so
    a later one (after the first process exits) carries on with the same data.
    It runs without its HTTP admin switches (a demo others on the machine could
    otherwise steer), and its files are the owner's only (0600; a new folder 0700).
    """
    instance = Path(instance_dir)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    pointer = instance / POINTER_FILE
    lock = instance / (POINTER_FILE + ".lock")
    with _exclusive_lock(lock):
        url = _pointer_url(pointer)
        if url is not None and _answers_health(url):
            return EmulatorHandle(url, controls=None)
        base_url, controls, stop_server = _serve(0, instance / STATE_FILE, time.time, False)
        _write_json_atomically(pointer, {"url": base_url, "pid": os.getpid()})

    def stop() -> None:
        stop_server()
        with _exclusive_lock(lock):
            if _pointer_url(pointer) == base_url:
                pointer.unlink(missing_ok=True)

    return EmulatorHandle(base_url, controls, stop)


def _serve(
    port: int,
    state_path: str | os.PathLike[str] | None,
    clock: Callable[[], float],
    allow_admin: bool,
) -> tuple[str, Controls, Callable[[], None]]:
    app = EmulatorApp(StateStore(state_path), clock, allow_admin=allow_admin)
    server = make_server(
        HOST, port, DropAwareApp(app), threaded=True, request_handler=_QuietRequestHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},  # how fast stop() returns (every test stops one)
        name=f"provider-emulator:{server.server_port}",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        # Held requests are answered first: no server thread is left parked after stop.
        app.controls.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://{HOST}:{server.server_port}", app.controls, stop


def _pointer_url(pointer: Path) -> str | None:
    try:
        url = json.loads(pointer.read_text(encoding="utf-8")).get("url")
    except (OSError, ValueError, AttributeError):
        return None
    # Only ever follow a loopback http URL, whatever the file says.
    if isinstance(url, str) and url.startswith(f"http://{HOST}:"):
        return url
    return None


def _answers_health(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_emulator/health", timeout=1) as answer:  # noqa: S310 (loopback http URL checked above)
            return json.load(answer).get("service") == SERVICE_NAME
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # 0600, like the rest
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
