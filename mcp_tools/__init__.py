"""MCP tools: thin wrappers that validate, call one service method and map errors.

Each module has ``register(server, get_services)``; ``get_services`` builds the
service layer on first use, so the server answers its handshake before any
database, SDK or pandas import. Every tool goes through ``boundary.tool_boundary``, and
every dict it answers says which environment each provider is in (``environments``) and
which of its fields hold provider text (``untrusted_fields``); with ``read_only`` only the
tools whose readOnlyHint is true are registered (see ``registration``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_tools import activities, health, migration, positions, trading
from mcp_tools.registration import registrar

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from mcp_tools.boundary import ServicesFactory


def register_all(
    server: MCPServer, get_services: ServicesFactory, *, read_only: bool = False
) -> None:
    tools = registrar(server, get_services, read_only=read_only)
    for module in (positions, activities, migration, health, trading):
        module.register(tools, get_services)
