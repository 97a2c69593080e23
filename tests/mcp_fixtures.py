"""What the MCP tests share: an in-memory client session, a person who answers the server's
question, and reading a tool's answer or error.

Imported explicitly by the tests (this is not a conftest).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import anyio

from mcp_server import build_server


class Person:
    """Answers the confirmation the server asks for, and remembers what it was shown."""

    def __init__(
        self, action: Literal["accept", "decline", "cancel"], confirm: bool = True
    ) -> None:
        self.action = action
        self.confirm = confirm
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: Any) -> Any:
        from mcp.types import ElicitResult

        self.asked.append(params.message)
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.confirm})
        return ElicitResult(action=self.action)


def call(
    services: Any, *calls: tuple[str, dict[str, Any]], person: Any = None, mode: str = "auto"
) -> list[Any]:
    """Each call in turn, in one session of a real MCP client with the server in memory
    (``mode="legacy"`` negotiates the protocol before 2026-07-28)."""
    import mcp

    async def run() -> list[Any]:
        options: dict[str, Any] = {"mode": mode}
        if person is not None:
            options["elicitation_callback"] = person
        async with mcp.Client(build_server(services), **options) as client:
            return [await client.call_tool(name, arguments) for name, arguments in calls]

    return anyio.run(run)


def call_tool(services: Any, name: str, arguments: dict[str, Any]) -> Any:
    (result,) = call(services, (name, arguments))
    return result


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return dict(result.structured_content.get("result", result.structured_content))
    return dict(json.loads(result.content[0].text))


def error_text(result: Any) -> str:
    assert result.is_error, result.content
    return " ".join(getattr(c, "text", "") for c in result.content)


def stdio_server(tmp_path: Any, emulator: Any) -> Any:
    """Parameters that start ``mcp_server.py`` over stdio on its own SQLite file, against
    ``emulator``, as an MCP client would."""
    import os
    import sys

    from mcp import StdioServerParameters

    from settings import PROJECT_ROOT

    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stdio.db'}",
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
    }
    return StdioServerParameters(
        command=sys.executable, args=[str(PROJECT_ROOT / "mcp_server.py")], env=env
    )
