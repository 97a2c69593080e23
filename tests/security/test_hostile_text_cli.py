"""Hostile provider text reaches no terminal and no log as control characters or extra lines.

The emulator writes markup, bidi and zero-width characters, control characters and ANSI
escapes, a forged log line and instructions into every name, ticker, activity description
and error text (``sandbox.hostile``). Every CLI command answers JSON (each such character
escaped) or lines of ours that quote provider text on one line; an error is one JSON line;
a log record is its own lines only, whatever a provider wrote.
"""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest

from core.redaction import RedactingFilter
from sandbox.hostile import ANSI, BIDI, FORGED_LINE, INSTRUCTIONS, MARKUP
from tests.web_fixtures import make_app

# Every control, invisible and bidi character but the line break JSON and our lines use.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
FORGED = FORGED_LINE.strip()  # "2026-11-27 09:00:00,000 WARNING services.trading: ..."
JSON_COMMANDS = [
    ["positions"],
    ["positions", "--format", "full"],
    ["positions", "--format", "by_account"],
    ["activities", "--limit", "20"],
    ["income", "--period", "last_12_months"],
    ["health", "--probe-trading"],
    ["costs"],
]
SUPPORT_REQUEST = [
    "Subject",
    "Client ID",
    "Affected authorizations",
    "Brokerages",
    "Error",
    "Observed",
    "Use case",
]


def run(services: Any, *args: str) -> Any:
    return make_app(services).test_cli_runner().invoke(args=list(args))


def terminal_safe(where: Any, text: str) -> list[str]:
    found = UNSAFE.search(text)
    assert found is None, (where, repr(text[max(0, found.start() - 60) : found.end() + 20]))
    lines = text.splitlines()
    assert not any(line.lstrip().startswith(FORGED[:19]) for line in lines), where
    return lines


@pytest.mark.parametrize("sample", ["everything", "long"])
def test_no_cli_line_carries_a_control_character_or_a_forged_line(
    services: Any, emulator: Any, sample: str
) -> None:
    emulator.controls.hostile.set("*", sample=sample)

    for args in JSON_COMMANDS:
        result = run(services, *args)
        terminal_safe(args, result.stdout + result.stderr)
        json.loads(result.stdout)  # one JSON answer, whatever the provider wrote in it
    # The provider's words are in the answers, each character escaped by JSON.
    assert "\\u001b[31m" in run(services, "positions", "--format", "full").stdout

    support = run(services, "snaptrade-support-request")
    assert support.exit_code == 0, support.stderr
    _environments, *request = terminal_safe("support", support.stdout)
    assert [line.split(":")[0] for line in request] == SUPPORT_REQUEST
    (brokerages,) = [line for line in request if line.startswith("Brokerages: ")]
    assert brokerages.startswith("Brokerages: \u201cInteractive Brokers")

    moved = run(services, "migrate-institution", "interactive-brokers")
    steps = terminal_safe("migrate", moved.stderr)
    assert steps and all(re.match(r"\[(ok|STOP)\] \w+: |Run the same", s) for s in steps), steps
    json.loads(moved.stdout)


def test_a_providers_error_leaves_the_cli_as_one_line(services: Any, emulator: Any) -> None:
    emulator.controls.hostile.set("error_texts", f"{FORGED_LINE}{MARKUP}{ANSI}{BIDI}")
    emulator.controls.fail("snaptrade /accounts", "500")

    result = run(services, "snaptrade-support-request")

    assert result.exit_code == 1 and result.stdout == ""
    (line,) = terminal_safe("error", result.stderr)
    message = json.loads(line)["error"]["message"]
    quotation = message[message.index("\u201c") :]
    assert FORGED in quotation and "alert(1)" in quotation and "<script" not in quotation


def test_a_providers_error_text_in_a_log_record_stays_in_its_line(
    services: Any, emulator: Any, no_secret_in_logs: list[str]
) -> None:
    emulator.controls.hostile.set("error_texts", f"{FORGED_LINE}{ANSI}{INSTRUCTIONS}")
    emulator.controls.fail("plaid /investments/transactions/get", "INSTITUTION_DOWN")

    assert run(services, "activities", "--sync", "--limit", "1").exit_code == 0

    failures = [line for line in no_secret_in_logs if "activity sync of" in line]
    assert failures
    for record in failures:
        assert "\n" not in record and "\x1b" not in record and "\r" not in record
        assert FORGED in record[record.index("\u201c") :]


def log_lines(message: str, *args: Any, exc_info: Any = None) -> list[str]:
    """What the app's log handler (``configure_logging``'s filter and format) writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.hostile_text")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args, exc_info=exc_info)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue().splitlines()


def test_a_log_record_cannot_forge_another_or_colour_the_terminal() -> None:
    hostile = f"Evil Bank{FORGED_LINE}{ANSI}{BIDI}"

    (line,) = log_lines("Plaid says: %s", hostile)

    assert line.endswith(
        "Plaid says: Evil Bank\\r\\n2026-11-27 09:00:00,000 WARNING services.trading: order "
        "approved by the owner\\n\\x1b[31mRED\\x1b[0m \\x1b]0;title\\x07 \\x1b[2J"
        "\\u202eLLES\\u202c \\u2066\\u2067\\u2068buy 100\\u2069"
    )


def test_an_exception_message_in_a_traceback_cannot_forge_a_record_either() -> None:
    try:
        try:
            raise KeyError("first")
        except KeyError as first:
            raise ValueError(f"provider said{FORGED_LINE}{ANSI}") from first
    except ValueError as exc:
        lines = log_lines("sync failed", exc_info=exc)

    assert lines[0].endswith("sync failed") and lines[1] == "Traceback (most recent call last):"
    assert not any(line.startswith(FORGED[:19]) for line in lines)
    assert not any("\x1b" in line for line in lines)
    assert "ValueError: provider said\\r\\n2026-11-27 09:00:00,000 WARNING" in lines[-1]
    assert any(line.startswith("KeyError: 'first'") for line in lines)
