"""Trading tools: ``preview_trade``, ``execute_trade`` (asks the person first), ``list_trades``.

No ``from __future__ import annotations`` here: the MCP SDK reads
``Resolve(confirm_order)`` from execute_trade's annotations, and confirm_order
is local to ``register``, so the annotations must be evaluated where they are written.
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt

from mcp_tools.boundary import ServicesFactory, tool_boundary

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

PREVIEW_TRADE_DOC = """Preview a stock or ETF order through SnapTrade; places nothing.

Checks the order (the account is the person's and its connection can trade; side BUY or
SELL; a quantity from 0.0001 to MAX_ORDER_QUANTITY; Market, or Limit with a limit_price from
0.0001 to 10,000,000; the symbol is tradable there), values it at its worst case (a
SELL at the higher of its limit and the best known market price, a BUY Limit at its limit,
a BUY Market at the highest known price plus MARKET_ORDER_BUFFER_PERCENT) and refuses it
above MAX_ORDER_VALUE, above what is left of MAX_DAILY_ORDER_VALUE (in BASE_CURRENCY) in
the last 24 hours, or a SELL above the units available (held, minus open sells and our
sells not yet in the holdings). A SELL limit more than FAR_LIMIT_PERCENT below the market
is refused unless allow_far_limit is true; the person is then warned in words.

Returns a preview_id, when it expires (at most 5 minutes), every order detail and the
impact: the worst-case value and its basis, commission and fees ("unknown" when SnapTrade
does not say), remaining cash. Show the preview to the person. Only if they want it
placed, call execute_trade with the preview_id before it expires. account_id is a
SnapTrade account id: get_positions with format="by_account" lists them.
"""

EXECUTE_TRADE_DOC = """Place a previewed order at the brokerage, once a person confirms it.

Only call it when the person has seen the preview and asked for the order to be placed.
A person must confirm every order: Brokerage Hub asks them the exact order through this
client when it can; a decline ends the preview for good. A client that cannot ask gets
status "pending_confirmation" and nothing is placed: the person confirms on the web app's
trades page (confirm_at) or with the CLI's confirm-trade, which places it. Refused when
trading is disabled (TRADING_ENABLED=false, the default), or when the preview is unknown,
expired, rejected or no longer valid. An order is placed at most once: calling it again
returns the recorded order (already_executed: true).
"""

LIST_TRADES_DOC = """Recent trade previews and orders from Brokerage Hub's audit, newest first.

Each entry: preview_id, when, the surface that asked (mcp, cli, repl, web), status
(previewed, confirmed, expired, refused, rejected, placing, executed, failed, unknown), who
confirmed it (confirmed_via), the order, its impact, and the execution (brokerage order
id, SnapTrade's status) if it was placed. Reads only Brokerage Hub's database.
"""


class OrderConfirmation(BaseModel):
    confirm: bool = Field(description="Place this order now")


class NotAsked(BaseModel):
    """Stands in for an answer when nobody was asked: the client cannot, or it is decided."""

    reason: Literal["cannot ask", "already decided"]


# JSON numbers only: pydantic's lax mode would take `true` as 1 and "5" as 5.
StrictNumber = StrictInt | StrictFloat


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
        quantity: Annotated[
            StrictNumber, Field(description="Number of shares, from 0.0001 to MAX_ORDER_QUANTITY.")
        ],
        side: Annotated[Literal["BUY", "SELL"], Field(description="BUY or SELL.")],
        account_id: Annotated[str, Field(description="SnapTrade account id (a UUID).")],
        order_type: Annotated[
            Literal["Market", "Limit"], Field(description="Market or Limit.")
        ] = "Market",
        limit_price: Annotated[
            StrictNumber | None, Field(description="Limit price; required for Limit orders only.")
        ] = None,
        allow_far_limit: Annotated[
            StrictBool,
            Field(
                description="Let a SELL limit far below the market reach the person (they "
                "are warned of the discount); false refuses it."
            ),
        ] = False,
    ) -> dict[str, Any]:
        return get_services().trading.preview_order(
            account_id,
            ticker,
            side,
            quantity,
            order_type,
            limit_price,
            allow_far_limit=allow_far_limit,
            requested_via="mcp",
        )

    @tool_boundary
    def confirm_order(preview_id: str, ctx: Context) -> Elicit[OrderConfirmation] | NotAsked:
        """Asks the person to confirm the exact order; runs before execute_trade's body.

        Its answer only chooses what the body asks of the service: whether a preview may
        be placed is decided by its state in the database (only ``confirmed`` is).
        """
        confirmation = get_services().trading.confirmation(preview_id)
        if confirmation["confirmed"]:
            return NotAsked(reason="already decided")
        if not _can_elicit(ctx):
            return NotAsked(reason="cannot ask")
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
        confirmation: Annotated[
            ElicitationResult[OrderConfirmation | NotAsked], Resolve(confirm_order)
        ],
    ) -> dict[str, Any]:
        trading = get_services().trading
        answer = confirmation.data if isinstance(confirmation, AcceptedElicitation) else None
        if isinstance(answer, NotAsked):
            # Places only what a person already confirmed; otherwise says where they can.
            return await anyio.to_thread.run_sync(
                lambda: trading.execute_if_confirmed(preview_id, requested_via="mcp")
            )
        if isinstance(answer, OrderConfirmation) and answer.confirm:
            return await anyio.to_thread.run_sync(
                lambda: trading.confirm_and_place(preview_id, via="mcp-elicitation")
            )
        # Declined, cancelled or "no": the preview ends for good, so asking again is futile.
        rejected = await anyio.to_thread.run_sync(
            lambda: trading.reject(preview_id, via="mcp-elicitation")
        )
        return {
            **rejected,
            "status": "not_placed",
            "reason": "The person did not confirm the order; nothing was placed and this "
            "preview cannot be placed any more.",
        }

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
        limit: Annotated[StrictInt, Field(description="How many entries, 1 to 200.")] = 20,
    ) -> dict[str, Any]:
        trading = get_services().trading
        return {"trades": trading.list_trades(limit), **trading.policy.describe()}
