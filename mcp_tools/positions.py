"""The ``get_positions`` tool."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from mcp_tools.boundary import ServicesFactory, tool_boundary

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from services.composition import Services

log = logging.getLogger(__name__)

GET_POSITIONS_DOC = """Brokerage positions across every linked account (Plaid and SnapTrade).

Answers in milliseconds from Brokerage Hub's cache. Each provider's data is
re-fetched automatically only when its cache has expired (see cache_info:
ttl_hours, age_hours, as_of, next_refresh_after), so call this freely.

format:
- "summary": totals per currency by provider, institution and security type, plus top
  holdings. Start here for "how am I allocated?" questions.
- "by_account": accounts grouped under provider and institution, each with positions
  and totals. Use for questions about one account or brokerage.
- "list": compact ticker, quantity, value, currency per position.
- "full": every field of every position (largest answer).

refresh_provider: "plaid" or "snaptrade" fetches that provider now before answering.
A refresh costs provider API calls (and may be billed), so only set it when the person
asks for up-to-the-minute data or cache_info shows the data is too old for the question.
Totals are never converted between currencies. A provider marked stale: true in
cache_info could not be refreshed; its last known data is shown with the error.
"""


def get_positions(
    format: str = "full",
    refresh_provider: str | None = None,
    *,
    services: Services | None = None,
) -> dict[str, Any]:
    """What the ``get_positions`` tool answers, as a plain function (for a REPL)."""
    from services.composition import configured_services  # lazily: tools/list comes first

    hub = services or configured_services()
    return hub.position_views.answer(format, refresh_provider)


def register(server: MCPServer, get_services: ServicesFactory) -> None:
    from mcp.types import ToolAnnotations

    @server.tool(
        name="get_positions",
        description=GET_POSITIONS_DOC,
        annotations=ToolAnnotations(
            title="Get brokerage positions",
            read_only_hint=True,
            idempotent_hint=True,
            destructive_hint=False,
            open_world_hint=True,
        ),
    )
    @tool_boundary
    def get_positions_tool(
        format: Annotated[
            Literal["full", "summary", "by_account", "list"],
            Field(description="Shape of the answer: full, summary, by_account or list."),
        ] = "full",
        refresh_provider: Annotated[
            Literal["plaid", "snaptrade"] | None,
            Field(description="Fetch this provider now (costs API calls); null uses the cache."),
        ] = None,
    ) -> dict[str, Any]:
        return get_positions(format, refresh_provider, services=get_services())
