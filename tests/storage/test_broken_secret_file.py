"""A corrupt or unreadable secrets.json: one line from every CLI command, a 503 on the web.

Nothing shown to a person names the file's absolute path (only ``secrets.json in
INSTANCE_DIR``), and nothing prints a traceback. ``migrate`` never reads the secret
store, so it still works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from settings import PROJECT_ROOT
from tests.web_fixtures import log_in, make_app, post

JSON = {"Accept": "application/json"}

SHOWN_AS = "secrets.json in INSTANCE_DIR"


def corrupt(path: Path) -> None:
    path.write_text('{"secrets": {"plaid/access_token/')


def unreadable(path: Path) -> None:
    """A folder where the file should be: no user, root included, can read it as JSON."""
    path.unlink()
    path.mkdir()


BREAKAGES: dict[str, Callable[[Path], None]] = {"corrupt": corrupt, "unreadable": unreadable}

# What each command needs to get past its own argument parsing.
COMMAND_ARGS: dict[str, list[str]] = {
    "migrate-institution": ["interactive-brokers"],
    "confirm-trade": ["p" * 32],
    "reject-trade": ["p" * 32],
}
COMMAND_INPUT = {"set-password": "a new password 123\na new password 123\n"}
RUN_WITHOUT_SECRET_STORE = {"migrate"}


def secret_file(services: Any) -> Path:
    return Path(services.settings.instance_dir) / "secrets.json"


def assert_no_path(text: str, services: Any) -> None:
    assert "Traceback" not in text
    assert str(services.settings.instance_dir) not in text
    assert str(PROJECT_ROOT) not in text


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_every_cli_command_says_in_one_line_that_the_secret_file_is_broken(
    services: Any, breakage: str
) -> None:
    app = make_app(services)
    BREAKAGES[breakage](secret_file(services))
    runner = app.test_cli_runner()

    assert len(app.cli.commands) >= 8
    for name in sorted(app.cli.commands):
        result = runner.invoke(
            args=[name, *COMMAND_ARGS.get(name, [])], input=COMMAND_INPUT.get(name)
        )
        assert_no_path(result.output, services)
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), (name, result.exception)
        if name in RUN_WITHOUT_SECRET_STORE:
            assert result.exit_code == 0, (name, result.output)
            continue
        assert result.exit_code == 1, (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        error = json.loads(lines[0])["error"]
        assert error["type"] == "secret_store_unavailable", (name, error)
        assert error["message"].endswith(SHOWN_AS), (name, error)
        assert "{" not in result.stdout, (name, result.stdout)  # half an answer is none


def test_make_run_stops_with_one_line_when_the_secret_file_is_corrupt(tmp_path: Path) -> None:
    """`make run` starts with `flask --app app demo-login`: a real process, the real app."""
    instance = tmp_path / "instance"
    env = {"INSTANCE_DIR": str(instance), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    flask = [sys.executable, "-m", "flask", "--app", "app", "demo-login"]
    first = subprocess.run(flask, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    corrupt(instance / "secrets.json")

    again = subprocess.run(flask, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)

    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        json.dumps(
            {
                "error": {
                    "type": "secret_store_unavailable",
                    "message": f"the secret file is unreadable or not valid JSON: {SHOWN_AS}",
                }
            }
        )
    ]


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_web_answers_503_without_a_path_when_the_secret_file_is_broken(
    services: Any, breakage: str
) -> None:
    app = make_app(services)
    visitor = app.test_client()
    person = app.test_client()
    log_in(person, services)
    BREAKAGES[breakage](secret_file(services))

    login_page = visitor.get("/login")
    assert login_page.status_code == 503
    assert login_page.mimetype == "text/html"
    assert "Temporarily unavailable" in login_page.get_data(as_text=True)
    assert SHOWN_AS in login_page.get_data(as_text=True)

    # Positions may still be served from the cache (as through a provider outage), each
    # provider then naming the broken file; or refused as a whole. Never a 500, never a path.
    api = post(person, "/positions/refresh", {"provider": "plaid"}, headers=JSON)
    assert api.status_code in (200, 503), api.get_data(as_text=True)
    if api.status_code == 503:
        assert api.get_json()["error"]["type"] == "secret_store_unavailable"
    else:
        for provider, info in api.get_json()["cache_info"].items():
            assert info["stale"] and info["error"].endswith(SHOWN_AS), (provider, info)

    for page in ("/costs", "/connections"):
        answer = person.get(page)
        assert answer.status_code == 503, page
        assert answer.mimetype == "text/html", page

    ready = visitor.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["failing"] == ["secret_store"]

    for answer in (login_page, api, ready, person.get("/costs")):
        assert_no_path(answer.get_data(as_text=True) + str(answer.headers), services)

    # Put right, the same process serves again: nothing was remembered as broken.
    target = secret_file(services)
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert visitor.get("/login").status_code == 200
    assert visitor.get("/readyz").status_code == 200
