"""A person confirms an order in a terminal: ``confirm-trade`` asks for the web password there
and then for a yes, and refuses when its input is not a terminal (an agent with a shell and no
person at the keyboard); ``reject-trade`` ends a preview for good.

Flask's CliRunner stands in for a pipe; a real pseudo-terminal (``pty.fork``) runs
``flask --app app confirm-trade`` as a person would, against the test's emulator and SQLite
database. The emulator's counter of ``/trade/{tradeId}`` calls is the number of orders placed.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select as sql_select

from services.models import LoginAttempt
from settings import PROJECT_ROOT
from tests.conftest import FakeClock, make_services
from tests.mcp_fixtures import error_text
from tests.trading.test_order_confirmation import (
    PLACE,
    SELL_QUANTITY,
    expected_question,
    mcp_calls,
    sell_preview,
    status_of,
)
from tests.web_fixtures import TEST_PASSWORD, make_app

NO_TERMINAL = "confirm-trade needs a person at a terminal"
FLASK = Path(sys.executable).with_name("flask")  # the venv's, next to this interpreter
TERMINAL_DEADLINE_SECONDS = 90  # only to fail a hung command, never to time anything


@pytest.fixture
def hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, sqlite_url, emulator, clock, TRADING_ENABLED="true")
    built.web_auth.passwords.set_password(TEST_PASSWORD)
    yield built
    built.close()


def one_error_line(stderr: str) -> dict[str, Any]:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    error: dict[str, Any] = json.loads(lines[0])["error"]
    return error


# --- without a terminal (CliRunner: input is not a terminal) ------------------------------


@pytest.mark.parametrize("typed", ["", f"{TEST_PASSWORD}\ny\n"], ids=["nothing", "piped-password"])
def test_confirm_trade_without_a_terminal_is_refused_in_one_line_and_places_nothing(
    hub: Any, emulator: Any, typed: str
) -> None:
    preview_id = sell_preview(hub)
    # Even with the right password and a yes piped in: nobody is at a keyboard.
    result = make_app(hub).test_cli_runner().invoke(args=["confirm-trade", preview_id], input=typed)
    assert result.exit_code == 1
    assert result.stdout == ""
    error = one_error_line(result.stderr)
    assert error["message"].startswith(NO_TERMINAL)
    assert "Nothing was placed" in error["message"]
    assert "Traceback" not in result.output
    assert emulator.controls.calls(PLACE) == 0
    assert status_of(hub, preview_id) == "previewed"
    assert hub.trading.list_trades()[0]["confirmed_via"] is None


def test_reject_trade_rejects_for_good(hub: Any, emulator: Any) -> None:
    preview_id = sell_preview(hub)
    runner = make_app(hub).test_cli_runner()
    result = runner.invoke(args=["reject-trade", preview_id])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["preview_id"] == preview_id and answer["status"] == "rejected"
    assert status_of(hub, preview_id) == "rejected"
    assert hub.trading.list_trades()[0]["error"] == "rejected by the person (cli)"

    # Nothing brings it back: not the assistant, not another reject.
    (execute,) = mcp_calls(hub, ("execute_trade", {"preview_id": preview_id}))
    assert "rejected" in error_text(execute)
    again = runner.invoke(args=["reject-trade", preview_id])
    assert again.exit_code == 1
    assert "rejected" in one_error_line(again.stderr)["message"]
    assert emulator.controls.calls(PLACE) == 0


def test_reject_trade_of_an_unknown_or_huge_id_is_one_short_line(hub: Any) -> None:
    runner = make_app(hub).test_cli_runner()
    for preview_id in ("y" * 32, "A" * 100_000):
        result = runner.invoke(args=["reject-trade", preview_id])
        assert result.exit_code == 1
        error = one_error_line(result.stderr)
        assert error["type"] == "not_found" and "unknown preview_id" in error["message"]
        assert len(result.stderr) < 1_000


# --- with a real terminal ---------------------------------------------------------------------


def run_in_terminal(
    argv: list[str], env: dict[str, str], stdout: Path, answers: list[tuple[str, str]]
) -> tuple[int, str]:
    """Run ``argv`` on a new pseudo-terminal (its stdout to the file ``stdout``), typing each
    answer once its prompt has appeared. Returns the exit code and what the terminal showed."""
    child, terminal = pty.fork()
    if child == 0:  # the child: stdin and stderr (and /dev/tty) are the terminal
        try:
            os.chdir(PROJECT_ROOT)
            out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    shown, waiting_from = "", 0
    pending = list(answers)
    deadline = time.monotonic() + TERMINAL_DEADLINE_SECONDS
    finished = False
    try:
        while True:
            if pending and pending[0][0] in shown[waiting_from:]:
                prompt, reply = pending.pop(0)
                waiting_from = shown.index(prompt, waiting_from) + len(prompt)
                os.write(terminal, reply.encode() + b"\n")
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{argv[3:]} did not finish; the terminal showed:\n{shown}")
            ready, _, _ = select.select([terminal], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the command ended and closed the terminal
                chunk = b""
            if not chunk:
                break
            shown += chunk.decode(errors="replace")
        finished = True
    finally:
        if not finished:
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        os.close(terminal)
    assert not pending, f"never asked {pending[0][0]!r}; the terminal showed:\n{shown}"
    return os.waitstatus_to_exitcode(status), shown


@pytest.fixture
def terminal_hub(tmp_path: Path, sqlite_url: str, emulator: Any) -> Iterator[Any]:
    """Services on real time (the command runs in real time) with the web password set."""
    from services.composition import system_clock

    built = make_services(tmp_path, sqlite_url, emulator, system_clock, TRADING_ENABLED="true")
    built.web_auth.passwords.set_password(TEST_PASSWORD)
    yield built
    built.close()


@pytest.mark.slow
def test_confirm_trade_in_a_terminal_needs_the_password_and_a_yes(
    terminal_hub: Any, emulator: Any, tmp_path: Path, sqlite_url: str
) -> None:
    hub = terminal_hub
    env = {
        **os.environ,
        # The same instance folder (secret store), database and emulator as the services.
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": sqlite_url,
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "TRADING_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
        "TERM": "dumb",
    }
    stdout = tmp_path / "confirm-trade.stdout"

    def confirm_trade(preview_id: str, *answers: tuple[str, str]) -> tuple[int, str, str]:
        argv = [str(FLASK), "--app", "app", "confirm-trade", preview_id]
        code, shown = run_in_terminal(argv, env, stdout, list(answers))
        assert TEST_PASSWORD not in shown, "the password was echoed"
        assert "Traceback" not in shown, shown
        return code, shown, stdout.read_text()

    # A wrong password: refused under the login brake, nothing placed.
    preview_id = sell_preview(hub)
    code, shown, out = confirm_trade(preview_id, ("Web password", "not the password at all"))
    assert code == 1, shown
    assert out == ""
    assert "wrong password: nothing was placed" in shown
    for line in expected_question(SELL_QUANTITY):  # the order is shown before the question
        assert line in shown, line
    assert "Place this order now?" not in shown
    assert emulator.controls.calls(PLACE) == 0
    assert status_of(hub, preview_id) == "previewed"
    with hub.engine.connect() as conn:
        attempts = conn.execute(
            sql_select(LoginAttempt.outcome).where(LoginAttempt.client == f"cli:{os.getuid()}")
        ).all()
    assert [outcome for (outcome,) in attempts] == ["failed"]

    # The right password and a yes: placed, once, and the order on stdout as JSON.
    code, shown, out = confirm_trade(
        preview_id, ("Web password", TEST_PASSWORD), ("Place this order now?", "y")
    )
    assert code == 0, shown
    placed = json.loads(out)
    assert placed["preview_id"] == preview_id and placed["status"] == "placed"
    assert placed["already_executed"] is False and placed["brokerage_order_id"]
    assert emulator.controls.calls(PLACE) == 1
    review = hub.trading.review(preview_id)
    assert review["status"] == "executed" and review["confirmed_via"] == "cli"
    assert review["execution"]["brokerage_order_id"] == placed["brokerage_order_id"]

    # The same preview again: nothing left to decide, not even a password asked.
    code, shown, out = confirm_trade(preview_id)
    assert code == 1 and "Web password" not in shown and out == ""
    assert f"preview {preview_id} is already executed" in shown
    assert emulator.controls.calls(PLACE) == 1

    # A new preview, the right password and a no: rejected for good.
    second = sell_preview(hub)
    code, shown, out = confirm_trade(
        second, ("Web password", TEST_PASSWORD), ("Place this order now?", "n")
    )
    assert code == 0, shown
    assert json.loads(out)["status"] == "rejected"
    assert status_of(hub, second) == "rejected"
    assert emulator.controls.calls(PLACE) == 1
