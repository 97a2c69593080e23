"""The reference pages in ``docs/`` name everything a reader can use, and nothing that is gone.

Each list is read from the code, never copied: the settings from ``settings.SETTINGS``, the
MCP tools and their arguments from a real ``tools/list``, the CLI commands and their options
from ``app.cli.commands``, the routes from ``app.url_map``, the REPL faces' names from their
``__all__`` and the emulator's HTTP switches from ``sandbox.admin.admin_rules()``. A new one
fails here until its page describes it; a removed one fails until its page forgets it.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

import anyio
import pytest

from settings import PROJECT_ROOT, SETTINGS, load_settings
from tests.web_fixtures import make_app

DOCS = PROJECT_ROOT / "docs"
REPL_FACES = (
    "plaid_loader",
    "snaptrade_loader",
    "snaptrade_broker_adapter",
    "services.trade_execution_service",
)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def sections(text: str) -> dict[str, str]:
    """Each ``### `name` `` heading's name and the text under it, up to the next heading."""
    found: dict[str, str] = {}
    parts = re.split(r"^#{2,3} ", text, flags=re.MULTILINE)
    for part in parts[1:]:
        heading, _, body = part.partition("\n")
        named = re.fullmatch(r"`([^`]+)`", heading.strip())
        if named:
            found[named.group(1)] = body
    return found


def quoted(name: str, text: str) -> bool:
    """``name`` appears in backticks, alone or as the start of a call or option list."""
    return re.search(r"`" + re.escape(name) + r"[`( =\[]", text) is not None


def shown_path(rule: str) -> str:
    """A URL rule as the pages write it: ``<int:run_id>`` is ``<run_id>``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule)


def names_route(method: str, path: str, text: str) -> bool:
    """``METHOD /path`` in the text, not merely as the start of a longer path."""
    pattern = re.escape(f"{method} {path}") + r"(?![\w/<-])"
    return re.search(pattern, text) is not None


# --- settings ----------------------------------------------------------------------------


def documented_settings() -> dict[str, str]:
    """Setting name -> the default cell of its row in docs/settings.md."""
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|", page("settings.md"), re.M)
    return {name: default.strip() for name, default in rows}


def default_cell(default: str) -> str:
    return f"`{default}`" if default else "(empty)"


def test_every_setting_has_a_row_with_its_default() -> None:
    rows = documented_settings()
    assert [s.name for s in SETTINGS if s.name not in rows] == [], "missing from settings.md"
    wrong = {s.name: rows[s.name] for s in SETTINGS if rows[s.name] != default_cell(s.default)}
    assert wrong == {}, "settings.md shows another default"
    assert set(rows) - {s.name for s in SETTINGS} == set(), "settings.md names no such setting"


# --- MCP tools ---------------------------------------------------------------------------


def registered_tools() -> dict[str, list[str]]:
    """Every tool the server lists (not read-only: the trading tools too), with its arguments."""
    import mcp

    from mcp_server import build_server

    settings = load_settings({}, use_dotenv=False)
    assert not settings.read_only

    async def listed() -> Any:
        async with mcp.Client(build_server(settings=settings)) as client:
            return await client.list_tools()

    return {
        tool.name: list(tool.input_schema.get("properties", {})) for tool in anyio.run(listed).tools
    }


def test_every_mcp_tool_has_a_section_with_its_arguments_and_an_example_answer() -> None:
    tools = registered_tools()
    documented = sections(page("assistant.md"))
    assert sorted(set(tools) - set(documented)) == [], "tools missing from assistant.md"
    for name, arguments in tools.items():
        body = documented[name]
        assert [a for a in arguments if not quoted(a, body)] == [], f"{name}: arguments missing"
        assert "```json" in body, f"{name}: no example answer"
    headings = {n for n in documented if re.fullmatch(r"[a-z_]+", n)}
    assert headings - set(tools) == set(), "assistant.md describes a tool that is not registered"


# --- the app: CLI commands and routes ----------------------------------------------------


@pytest.fixture
def app(services: Any) -> Any:
    return make_app(services)


def test_every_cli_command_has_a_section_with_its_options(app: Any) -> None:
    documented = sections(page("cli.md"))
    commands = app.cli.commands
    assert sorted(set(commands) - set(documented)) == [], "commands missing from cli.md"
    for name, command in commands.items():
        body = documented[name]
        for param in command.params:
            if param.param_type_name == "argument":
                assert f"<{param.name}>" in body, f"{name}: argument {param.name} missing"
            else:
                option = max(param.opts, key=len)
                assert quoted(option, body) or f"[{option}" in body, f"{name}: {option} missing"
    assert set(documented) - set(commands) == set(), "cli.md describes a command that is gone"


def test_every_route_is_in_the_browser_pages_route_table(app: Any) -> None:
    text = page("browser.md")
    table = text.split("## Every route", 1)[1].split("\n## ", 1)[0]
    served = {
        (method, shown_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    }
    missing = sorted(f"{m} {p}" for m, p in served if not names_route(m, p, table))
    assert missing == [], "routes missing from the table in browser.md"
    rows = set(re.findall(r"^\| `(" + "|".join(HTTP_METHODS) + r") (/[^`]*)` \|", table, re.M))
    assert rows - served == set(), "browser.md lists a route the app does not serve"


# --- REPL faces and the emulator's switches ----------------------------------------------


def test_every_public_name_of_a_repl_face_is_in_the_repl_page() -> None:
    text = page("repl.md")
    for face in REPL_FACES:
        assert f"`{face}`" in text, f"{face} has no section in repl.md"
        names = importlib.import_module(face).__all__
        assert [n for n in names if not quoted(n, text)] == [], f"{face}: names missing"


def test_every_http_switch_of_the_emulator_is_in_the_testing_page() -> None:
    from sandbox.admin import admin_rules

    text = page("testing.md")
    missing = sorted(
        f"{method} {rule.rule}"
        for rule in admin_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if not names_route(method, rule.rule, text)
    )
    assert missing == [], "emulator switches missing from testing.md"


# --- the checks fail when an entry goes -------------------------------------------------


# Each case: the page, one entry taken out of it, the check, and what the check then says.
TAKEN_OUT = [
    ("settings.md", "| `FX_RATES_URL` |", "settings", "missing from settings.md"),
    ("assistant.md", "### `list_trades`", "tools", "tools missing from assistant.md"),
    ("assistant.md", "| `allow_far_limit` |", "tools", "preview_trade: arguments missing"),
    ("cli.md", "### `reject-trade`", "cli", "commands missing from cli.md"),
    ("cli.md", "[--cursor C] [--sync]", "cli", "activities: --cursor missing"),
    ("browser.md", "| `POST /trades/<preview_id>/reject` |", "routes", "routes missing"),
    ("repl.md", "`wait_for_public_token(", "repl", "plaid_loader: names missing"),
    ("testing.md", "`POST /_emulator/cash`", "switches", "emulator switches missing"),
]


@pytest.mark.parametrize(("name", "cut", "check", "says"), TAKEN_OUT)
def test_a_page_without_an_entry_fails_its_check(
    app: Any, monkeypatch: pytest.MonkeyPatch, name: str, cut: str, check: str, says: str
) -> None:
    real = page
    assert cut in real(name), f"{cut!r} is not in {name}"
    monkeypatch.setattr(
        sys.modules[__name__], "page", lambda n: real(n).replace(cut, "") if n == name else real(n)
    )
    checks = {
        "settings": test_every_setting_has_a_row_with_its_default,
        "tools": test_every_mcp_tool_has_a_section_with_its_arguments_and_an_example_answer,
        "cli": lambda: test_every_cli_command_has_a_section_with_its_options(app),
        "routes": lambda: test_every_route_is_in_the_browser_pages_route_table(app),
        "repl": test_every_public_name_of_a_repl_face_is_in_the_repl_page,
        "switches": test_every_http_switch_of_the_emulator_is_in_the_testing_page,
    }
    with pytest.raises(AssertionError, match=re.escape(says)):
        checks[check]()


def test_a_route_is_named_whole_not_as_the_start_of_a_longer_one() -> None:
    assert not names_route("POST", "/_emulator/held", "`POST /_emulator/held/wait`")
    assert names_route("GET", "/trades/<preview_id>", "| `GET /trades/<preview_id>` |")
