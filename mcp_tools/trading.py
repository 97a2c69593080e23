"""Trading tools: ``preview_trade``, ``execute_trade`` (asks the person first), ``list_trades``.

No ``from __future__ import annotations`` here: the MCP SDK reads
``Resolve(confirm_order)`` from execute_trade's annotations, and confirm_order
is local to ``register``, so the annotations must be evaluated where they are written.
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field

from mcp_tools.boundary import ServicesFactory, tool_boundary

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

PREVIEW_TRADE_DOC = """Preview a stock or ETF order through SnapTrade; places nothing.

Checks the order (the account is the person's and its connection can trade; side BUY or
SELL; positive quantity; Market, or Limit with limit_price; the symbol is tradable there;
estimated value at most MAX_ORDER_VALUE; a SELL not above the held quantity), then asks
SnapTrade for the order's impact. Returns a preview_id, when it expires (at most 5
minutes), every order detail and the impact: estimated price and value, commission and
fees ("unknown" when SnapTrade does not say), remaining cash.

Show the preview to the person. Only if they want it placed, call execute_trade with the
preview_id before it expires. account_id is a SnapTrade account id: get_positions with
format="by_account" lists them. Errors say what to do, e.g. SnapTrade error 1020 means
trading must be enabled for the app by SnapTrade support.
"""

EXECUTE_TRADE_DOC = """Place a previewed order at the brokerage. This buys or sells for real.

Only call it when the person has seen the preview and asked for the order to be placed.
Brokerage Hub first asks the person to confirm the exact order (when the client can ask);
if they decline or do not answer, nothing is placed. It is refused when trading is
disabled (TRADING_ENABLED=false, the default), or when the preview is unknown, expired,
refused or no longer valid. An order is placed at most once: calling it again with the
same preview_id returns the recorded order (already_executed: true).
"""

LIST_TRADES_DOC = """Recent trade previews and orders from Brokerage Hub's audit, newest first.

Each entry: preview_id, when, the surface that asked (mcp, cli, repl), status
(previewed, expired, refused, placing, executed, failed, unknown), the order, its
impact, and the execution (brokerage order id, SnapTrade's status) if it was placed.
Reads only Brokerage Hub's database.
"""


class OrderConfirmation(BaseModel):
    confirm: bool = Field(description="Place this order now")


class NotAsked(BaseModel):
    """Stands in for an answer when the client cannot ask, or there is nothing to confirm."""

    reason: str


def _can_elicit(ctx: Any) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` means form support; url-only clients cannot show a form.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def register(server: "MCPServer", get_services: ServicesFactory) -> None:
    import anyio.to_thread
    from mcp.types import ToolAnnotations

    @server.tool(
        name="preview_trade",
        description=PREVIEW_TRADE_DOC,
        annotations=ToolAnnotations(
            title="Preview a trade (places nothing)",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    @tool_boundary
    def preview_trade(
        ticker: Annotated[str, Field(description="Symbol to trade, e.g. AAPL or SCHB.")],
        quantity: Annotated[float, Field(description="Number of shares, greater than 0.")],
        side: Annotated[Literal["BUY", "SELL"], Field(description="BUY or SELL.")],
        account_id: Annotated[str, Field(description="SnapTrade account id (a UUID).")],
        order_type: Annotated[
            Literal["Market", "Limit"], Field(description="Market or Limit.")
        ] = "Market",
        limit_price: Annotated[
            float | None, Field(description="Limit price; required for Limit orders only.")
        ] = None,
    ) -> dict[str, Any]:
        return get_services().trading.preview_order(
            account_id,
            ticker,
            side,
            quantity,
            order_type,
            limit_price,
            requested_via="mcp",
        )

    @tool_boundary
    def confirm_order(preview_id: str, ctx: Context) -> Elicit[OrderConfirmation] | NotAsked:
        """Asks the person to confirm the exact order; runs before execute_trade's body."""
        if not _can_elicit(ctx):
            return NotAsked(reason="the client cannot ask the person")
        confirmation = get_services().trading.confirmation(preview_id)
        if confirmation["already_executed"]:
            return NotAsked(reason="already executed")
        return Elicit(confirmation["message"], OrderConfirmation)

    @server.tool(
        name="execute_trade",
        description=EXECUTE_TRADE_DOC,
        annotations=ToolAnnotations(
            title="Place a previewed trade",
            read_only_hint=False,
            destructive_hint=True,
            # The same preview_id never places a second order.
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    @tool_boundary
    async def execute_trade(
        preview_id: Annotated[str, Field(description="The preview_id from preview_trade.")],
        confirmation: Annotated[ElicitationResult[OrderConfirmation], Resolve(confirm_order)],
    ) -> dict[str, Any]:
        if not isinstance(confirmation, AcceptedElicitation) or (
            isinstance(confirmation.data, OrderConfirmation) and not confirmation.data.confirm
        ):
            return {
                "status": "not_placed",
                "preview_id": preview_id,
                "reason": "The person did not confirm the order; nothing was placed.",
            }
        return await anyio.to_thread.run_sync(
            lambda: get_services().trading.execute_order(preview_id, requested_via="mcp")
        )

    @server.tool(
        name="list_trades",
        description=LIST_TRADES_DOC,
        annotations=ToolAnnotations(
            title="List recent trades",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    @tool_boundary
    def list_trades(
        limit: Annotated[int, Field(description="How many entries, 1 to 200.")] = 20,
    ) -> dict[str, Any]:
        return {"trades": get_services().trading.list_trades(limit)}
