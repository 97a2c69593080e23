"""MCP tools: thin wrappers that validate, call one service method and map errors.

Each module has ``register(server, get_services)``; ``get_services`` builds the
service layer on first use, so the server answers its handshake before any
database, SDK or pandas import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from services.composition import Services

ServicesFactory = Callable[[], "Services"]


def register_all(server: MCPServer, get_services: ServicesFactory) -> None:
    from mcp_tools import positions

    positions.register(server, get_services)
    from mcp_tools import migration

    migration.register(server, get_services)
    from mcp_tools import health, trading

    health.register(server, get_services)
    trading.register(server, get_services)


def tool_error(exc: BaseException) -> Any:
    """Our errors become ToolError so their message reaches the model (others are masked)."""
    from mcp.server.mcpserver.exceptions import ToolError

    from services.errors import BrokerageHubError

    if isinstance(exc, BrokerageHubError):
        return ToolError(exc.message)
    logging.getLogger(__name__).error("tool failed unexpectedly", exc_info=exc)
    return ToolError("internal error; see the server log")
