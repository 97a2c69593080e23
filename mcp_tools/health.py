"""The ``check_connections`` tool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from mcp_tools.boundary import ServicesFactory, tool_boundary

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

CHECK_CONNECTIONS_DOC = """State of every brokerage connection and what needs attention.

For each SnapTrade connection (brokerage authorization): brokerage, connection type
(read or trade), disabled (and since when), its account ids, whether its data can be
read (data_ok) and, only when probe_trading is true, whether trading works
(trading_ok, trading_error). For each Plaid Item: institution, ok, needs re-login,
consent expiry. needs_attention lists, in words, what the person should do (reconnect a
disabled connection, log in again, ask SnapTrade to enable trading, ...). Each provider has
a status: ok, error (it could not be checked) or disabled (switched off here: not asked).

Passive by default: it reads connection details and one balance per connection and
never touches the trading API. probe_trading=true adds one symbol search per trade
connection (read-only at the broker). Use it before trading or when positions look stale.
"""


def register(server: MCPServer, get_services: ServicesFactory) -> None:
    from mcp.types import ToolAnnotations

    @server.tool(
        name="check_connections",
        description=CHECK_CONNECTIONS_DOC,
        annotations=ToolAnnotations(
            title="Check brokerage connections",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    @tool_boundary
    def check_connections(
        probe_trading: Annotated[
            bool,
            Field(description="Also test trading access (one symbol search per connection)."),
        ] = False,
    ) -> dict[str, Any]:
        return get_services().health.check_connections(probe_trading=probe_trading)
