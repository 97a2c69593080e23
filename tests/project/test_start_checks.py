"""What stops every entry point with one line, no traceback: a production provider beside an
emulator one, and (outside the embedded default) a database schema that is behind.

Run as a person runs them: the MCP server process, ``flask --app app <command>`` and the web
app's ``create_app()`` as subprocesses with their own environment; the MCP server's first
tool call in memory. ``flask --app app migrate`` itself works on a schema that is behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from settings import PROJECT_ROOT

MIX = (
    "brokerage-hub: PLAID_ENV=production beside SNAPTRADE_ENV=emulator would show the "
    "emulator's made-up holdings as real: set both to real environments (or disable one), "
    "or ALLOW_MIXED_ENVIRONMENTS=true"
)


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO) ")


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the person reads (informational log lines aside), never a traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not LOG_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    return lines[0]


def newest_revision() -> str:
    from alembic.script import ScriptDirectory

    from services.storage.db import alembic_config

    return ", ".join(sorted(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()))


# --- production beside the emulator ------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> dict[str, str]:
    """Plaid for real, SnapTrade left at its default (the emulator): the half-real set-up."""
    return {
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "PLAID_ENV": "production",
        "PLAID_CLIENT_ID": "real-client-id",
        "PLAID_SECRET": "real-secret",
    }


def test_the_mcp_server_refuses_production_beside_the_emulator_with_one_line(
    mixed: dict[str, str],
) -> None:
    result = run(["mcp_server.py"], mixed)
    assert result.returncode == 2
    assert one_line(result) == MIX
    assert result.stdout == ""  # nothing on the protocol wire


@pytest.mark.parametrize("command", [["positions"], ["health"], ["migrate"]])
def test_every_cli_command_refuses_production_beside_the_emulator_with_one_line(
    mixed: dict[str, str], command: list[str]
) -> None:
    result = run(["-m", "flask", "--app", "app", *command], mixed)
    assert result.returncode == 2
    assert one_line(result) == MIX


def test_the_web_app_refuses_production_beside_the_emulator_with_one_line(
    mixed: dict[str, str],
) -> None:
    result = run(["-c", "import app; app.create_app()"], mixed)
    assert result.returncode == 2
    assert one_line(result) == MIX


def test_mixing_is_allowed_when_the_setting_says_so(mixed: dict[str, str]) -> None:
    result = run(
        ["-m", "flask", "--app", "app", "migrate"], {**mixed, "ALLOW_MIXED_ENVIRONMENTS": "true"}
    )
    assert result.returncode == 0, result.stderr


# --- a schema that is behind -------------------------------------------------------------


@pytest.fixture
def deployed(tmp_path: Path) -> dict[str, str]:
    """Outside the embedded default on a fresh SQLite file: Plaid sandbox, SnapTrade disabled."""
    return {
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "PLAID_ENV": "sandbox",
        "PLAID_CLIENT_ID": "sandbox-client-id",
        "PLAID_SECRET": "sandbox-secret",
        "PLAID_BASE_URL": "http://127.0.0.1:9",  # never reached: nothing is linked
        "SNAPTRADE_ENV": "disabled",
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    }


def behind(revision: str) -> str:
    return (
        f"brokerage-hub: the database schema is behind (revision {revision}, newest "
        f"{newest_revision()}): run `flask --app app migrate`"
    )


EMPTY = "none: the database is empty"


@pytest.mark.parametrize(
    "command",
    [
        ["-c", "import app; app.create_app()"],  # as gunicorn builds it
        ["-m", "flask", "--app", "app", "run", "--port", "0"],
    ],
)
def test_the_web_app_refuses_to_start_on_a_schema_that_is_behind(
    deployed: dict[str, str], command: list[str]
) -> None:
    result = run(command, deployed)
    assert result.returncode == 2
    assert one_line(result) == behind(EMPTY)


@pytest.mark.parametrize("command", [["positions"], ["costs"], ["health"], ["demo-login"]])
def test_every_cli_command_but_migrate_refuses_a_schema_that_is_behind(
    deployed: dict[str, str], command: list[str]
) -> None:
    result = run(["-m", "flask", "--app", "app", *command], deployed)
    assert result.returncode == 2
    assert one_line(result) == behind(EMPTY)
    assert result.stdout == ""


def mcp_first_call(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Any:
    """The first tool call of a new MCP server built from ``env`` (in memory)."""
    import mcp

    from mcp_server import build_server

    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def call() -> Any:
        async with mcp.Client(build_server()) as client:
            return await client.call_tool("get_positions", {"format": "summary"})

    return anyio.run(call)


def test_the_mcp_servers_first_tool_call_says_the_schema_is_behind(
    deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = mcp_first_call(monkeypatch, deployed)
    assert result.is_error
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert behind(EMPTY).removeprefix("brokerage-hub: ") in text
    assert "Traceback" not in text and "internal error" not in text


def test_a_schema_one_migration_behind_names_its_revision(deployed: dict[str, str]) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from services.storage.db import alembic_config

    config = alembic_config(deployed["DATABASE_URL"])
    head = ScriptDirectory.from_config(config).get_current_head()
    previous = ScriptDirectory.from_config(config).get_revision(head).down_revision
    command.upgrade(config, str(previous))
    result = run(["-m", "flask", "--app", "app", "positions"], deployed)
    assert result.returncode == 2
    assert one_line(result) == behind(str(previous))


def test_flask_migrate_works_on_a_schema_that_is_behind_and_then_everything_starts(
    deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated = run(["-m", "flask", "--app", "app", "migrate"], deployed)
    assert migrated.returncode == 0, migrated.stderr
    assert "database schema is up to date" in migrated.stdout
    assert run(["-c", "import app; app.create_app()"], deployed).returncode == 0
    costs = run(["-m", "flask", "--app", "app", "costs"], deployed)
    assert costs.returncode == 0, costs.stderr
    assert '"snaptrade": "disabled"' in costs.stdout
    result = mcp_first_call(monkeypatch, deployed)
    assert not result.is_error, result.content


def test_the_embedded_default_still_migrates_by_itself(tmp_path: Path) -> None:
    env = {
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
    }
    result = run(["-m", "flask", "--app", "app", "costs"], env)
    assert result.returncode == 0, result.stderr
    assert '"plaid": "emulator"' in result.stdout
