"""The emulator's admin switches (faults, latency, recorded calls) answer only when asked for.

Anyone on the machine can reach 127.0.0.1. The emulator behind a running demo
(``ensure_emulator``, i.e. ``make run``) and a plain ``python -m sandbox`` refuse every
``/_emulator/`` switch but health with a 403; one started for tests (``start_emulator``)
or with ``--allow-admin`` serves them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.server import ensure_emulator, start_emulator

REPO_ROOT = Path(__file__).resolve().parents[2]
FAULT = {"endpoint": "plaid /accounts/get", "fault": "RATE_LIMIT_EXCEEDED", "times": 1}


def _switches_refused(base_url: str) -> None:
    """Every kind of switch is a 403 that says how to turn them on; health still answers."""
    admin = f"{base_url}/_emulator"
    for method, path, body in (
        ("POST", "/fail", FAULT),
        ("POST", "/latency", {"endpoint": FAULT["endpoint"], "seconds": 5}),
        ("POST", "/hold", {"endpoint": FAULT["endpoint"]}),
        ("GET", "/calls", None),
        ("GET", "/held", None),
        ("POST", "/state/reset", None),
        ("POST", "/connections/any/disable", {"disabled": True}),
    ):
        answer = requests.request(method, admin + path, json=body, timeout=5)
        assert answer.status_code == 403, (path, answer.text)
        assert "--allow-admin" in answer.json()["error"]
    health = requests.get(f"{admin}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["admin"] is False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def standalone(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """``python -m sandbox`` with the extra arguments of the test's parameter."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), *request.param],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "plaid <url>": it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_demo_emulator_refuses_its_admin_switches(tmp_path: Path) -> None:
    handle = ensure_emulator(tmp_path)
    try:
        _switches_refused(handle.base_url)
        # The process that started it keeps its Python handle: the app's own tests use it.
        assert handle.controls is not None
        assert handle.controls.calls() == 0  # and the refused requests reached no provider
    finally:
        handle.stop()


def test_an_emulator_started_without_admin_refuses_its_switches() -> None:
    with start_emulator(allow_admin=False) as handle:
        _switches_refused(handle.base_url)


def test_an_emulator_started_for_tests_serves_its_switches() -> None:
    with start_emulator() as handle:
        admin = f"{handle.base_url}/_emulator"
        assert requests.post(f"{admin}/fail", json=FAULT, timeout=5).status_code == 200
        assert requests.get(f"{admin}/calls", timeout=5).json() == {"calls": 0}
        assert requests.get(f"{admin}/health", timeout=5).json()["admin"] is True


@pytest.mark.slow
@pytest.mark.parametrize("standalone", [()], indirect=True)
def test_a_standalone_emulator_refuses_its_switches_without_the_flag(standalone: str) -> None:
    _switches_refused(standalone)


@pytest.mark.slow
@pytest.mark.parametrize("standalone", [("--allow-admin",)], indirect=True)
def test_a_standalone_emulator_serves_its_switches_with_the_flag(standalone: str) -> None:
    admin = f"{standalone}/_emulator"
    assert requests.post(f"{admin}/fail", json=FAULT, timeout=5).status_code == 200
    assert requests.get(f"{admin}/calls", timeout=5).json() == {"calls": 0}
    assert requests.get(f"{admin}/health", timeout=5).json()["admin"] is True
