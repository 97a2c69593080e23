"""Migration planning and provider costs: read-only tools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from mcp_tools.boundary import ServicesFactory, tool_boundary

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

PLAN_DOC = """Check whether an institution can move from Plaid to SnapTrade, changing nothing.

Runs the migration's checks: SnapTrade's connection to the brokerage is healthy,
holdings fetched fresh from both providers match (every difference is listed), and
exactly one Plaid token belongs to the institution. Reports what the move would do
and the monthly saving. It removes nothing: the person does the move on the web app's
page for the institution (/migrations/<institution>, where they confirm it by typing its
name) or with `flask --app app migrate-institution <institution> --execute`. One run per
institution at a time: while another runs, this says which. Costs a few provider calls
(fresh holdings from both providers).
"""

COSTS_DOC = """What each data provider costs per month, and what wastes money.

Plaid bills a monthly fee per linked Item while its token exists (whether or not it is
called) and per /investments/refresh call; SnapTrade bills per connected user per month.
Lists billable Items, the estimated monthly total, API calls per provider, endpoint and
day for the last 30 days, and waste: Items still billed without a usable token, two Items
for one institution, an institution linked through both providers. Reads only stored data.
"""


def register(server: MCPServer, get_services: ServicesFactory) -> None:
    from mcp.types import ToolAnnotations

    @server.tool(
        name="plan_institution_migration",
        description=PLAN_DOC,
        annotations=ToolAnnotations(
            title="Plan moving an institution from Plaid to SnapTrade",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    @tool_boundary
    def plan_institution_migration(
        institution: Annotated[
            str,
            Field(description="Institution slug, e.g. interactive-brokers or merrill-lynch."),
        ],
    ) -> dict[str, Any]:
        return get_services().migrations.plan(institution)

    @server.tool(
        name="get_provider_costs",
        description=COSTS_DOC,
        annotations=ToolAnnotations(
            title="Provider costs",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    @tool_boundary
    def get_provider_costs() -> dict[str, Any]:
        return get_services().costs.report()
