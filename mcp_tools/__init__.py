"""MCP tools: thin wrappers that validate, call one service method and map errors.

Each module has ``register(server, get_services)``; ``get_services`` builds the
service layer on first use, so the server answers its handshake before any
database, SDK or pandas import. Every tool goes through ``boundary.tool_boundary``, and
every dict it answers says which environment each provider is in (``environments``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_tools import health, migration, positions, trading
from mcp_tools.environments import stamping_environments

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from mcp_tools.boundary import ServicesFactory


def register_all(server: MCPServer, get_services: ServicesFactory) -> None:
    registrar = stamping_environments(server, get_services)
    for module in (positions, migration, health, trading):
        module.register(registrar, get_services)
