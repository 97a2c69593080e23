"""The ``get_positions`` tool."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StrictInt

from mcp_tools.boundary import ServicesFactory, services_of, tool_boundary
from mcp_tools.environments import stamped
from mcp_tools.untrusted import marked

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from services.composition import Services

log = logging.getLogger(__name__)

GET_POSITIONS_DOC = """Brokerage positions across every linked account (Plaid and SnapTrade).

Answers in milliseconds from Brokerage Hub's cache. Each provider's data is
re-fetched automatically only when its cache has expired (see cache_info:
ttl_hours, age_hours, as_of, next_refresh_after), so call this freely.

format:
- "summary": totals per currency and in the base currency (base_total) by provider,
  institution and security type, the portfolio's unrealized gain, plus top holdings.
  Start here for "what is it all worth?" and "how am I allocated?".
- "holdings": one row per security across every account and provider (quantity, value,
  value in the base currency, cost basis, unrealized gain and gain percent, and the
  accounts holding it), largest first, in pages. Use for "how much am I up on NVDA?".
- "by_account": accounts grouped under provider and institution, each with its totals,
  base_total, gains and its 10 largest positions (position_count and more_positions say
  how many there are). Use for questions about one account or brokerage.
- "list": compact ticker, quantity, value, value in the base currency, gain, in pages.
- "full": every field of every position, in pages.

Every answer has base_total (the portfolio in the base currency), gains (the unrealized
gain in the base currency over positions whose cost basis is known, and the share of
value whose basis is unknown) and fx: base_currency, valued_on, every rate used (pair,
rate, date, source), amounts left unconverted (a currency without a rate is never added
at 1:1) and warnings. A gain shown as "unknown" has no trustworthy cost basis: it is not
zero, never sum it as zero.

Paging ("full", "list" and "holdings"): an answer holds one page (default 50 for full
and holdings, 200 for list; limit sets it, at most 100 / 500) and says total, truncated
and next_cursor. While truncated is true, call again with the same format and
cursor=next_cursor for the next page; totals always cover the whole portfolio. A cursor
is refused once the positions or the exchange rates changed: then start again without one.

refresh_provider: "plaid" or "snaptrade" fetches that provider now before answering.
A refresh costs provider API calls (and may be billed), so only set it when the person
asks for up-to-the-minute data or cache_info shows the data is too old for the question.
Each Item or account is fetched at most once every few minutes (a cooldown): within it, a
refresh answers from the rows just fetched and cache_info.<provider>.refresh says so
(done: false, reason: "cooldown", retry_after_seconds): those rows are minutes old, so
answer from them rather than asking again.
A provider marked stale: true in
cache_info could not be refreshed; its last known data is shown with the error. A provider
marked disabled: true is switched off here: it is never called and none of its positions
are shown. environments says each provider's environment ("emulator": made-up demo data).
"""


def get_positions(
    format: str = "full",
    refresh_provider: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    *,
    services: Services | None = None,
) -> dict[str, Any]:
    """What the ``get_positions`` tool answers, as a plain function (for a REPL).

    The same answer as the tool's: provider text neutralized and marked (``untrusted``);
    ``hub.position_views.answer`` gives the data as the providers sent it.
    """
    from services.composition import configured_services  # lazily: tools/list comes first

    hub = services or configured_services()
    answer = hub.position_views.answer(format, refresh_provider, limit=limit, cursor=cursor)
    return marked(stamped(answer, hub.settings.provider_envs))


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
    async def get_positions_tool(
        format: Annotated[
            Literal["full", "summary", "by_account", "list", "holdings"],
            Field(description="Shape of the answer: full, summary, holdings, by_account or list."),
        ] = "full",
        refresh_provider: Annotated[
            Literal["plaid", "snaptrade"] | None,
            Field(
                description="Fetch this provider now (costs API calls; at most once every few "
                "minutes per Item or account); null uses the cache."
            ),
        ] = None,
        limit: Annotated[
            StrictInt | None,
            Field(
                description="Rows per page for full and holdings (default 50, at most 100) and "
                "list (default 200, at most 500); not used by summary or by_account."
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            Field(
                description="next_cursor from the previous page of the same format; leave it "
                "out for the first page."
            ),
        ] = None,
    ) -> dict[str, Any]:
        import anyio.to_thread

        hub = await services_of(get_services)
        if refresh_provider is None:
            # An answer already built for the cache's generation costs two small queries:
            # cheaper than handing it to a worker thread and back.
            warm = hub.position_views.answer_if_warm(format, limit=limit, cursor=cursor)
            if warm is not None:
                return warm
        return await anyio.to_thread.run_sync(
            lambda: get_positions(format, refresh_provider, limit, cursor, services=hub)
        )
