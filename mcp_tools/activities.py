"""The ``get_activities`` and ``get_income`` tools: the accounts' history and what it earned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StrictInt

from mcp_tools.boundary import ServicesFactory, services_of, tool_boundary
from mcp_tools.environments import stamped
from mcp_tools.untrusted import marked

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from services.composition import Services

GET_ACTIVITIES_DOC = """Account activity across every linked account: buys, sells, dividends,
interest, fees, taxes, deposits, withdrawals, transfers and splits, newest first, in pages.

History reaches 24 months back. It is synced from Plaid and SnapTrade when its cache
expires (cache_info: as_of, age_hours, ttl_hours), so call this freely. An institution
linked through both providers is counted once (counted_once says under which).

Filters (all optional): start_date and end_date (YYYY-MM-DD, inclusive), type (one of
buy, sell, dividend, interest, fee, tax, deposit, withdrawal, transfer, split, other, or
several comma-separated), account_id (from get_positions), ticker.

Each activity has trade_date, type, ticker, description, quantity, price, amount (signed:
positive is cash into the account, negative is cash out), fee (a commission on a trade),
currency, and amount_base: the amount in the base currency at the rate of its own date
(rate says which; null when the currency has no rate).

Paging: limit (default 100, at most 500); while truncated is true, call again with the
same filters and cursor=next_cursor. A cursor is refused once the history was synced again
or with other filters: then start again without one.

For sums ("how much did I earn in dividends this year?") call get_income instead."""

GET_INCOME_DOC = """Income and costs over a period: dividends and interest earned, fees,
taxes and commissions paid, per account, per month and in total, natively and in the base
currency (each amount converted at the rate of its own date).

period: this_month, last_month, this_quarter, last_quarter, this_year, last_year,
year_to_date (default), last_12_months (also month, quarter, year, ytd); or leave period
out and give start_date and end_date (YYYY-MM-DD) for any range.

totals has, per category, native (per currency) and base, plus income_base (dividends +
interest), costs_base (fees + taxes + commissions) and net_base. by_account and by_month
break the same down. fx lists the rates used (pair, first and last date, sources) and any
currency left unconverted (never added at 1:1). Fees are positive numbers (money paid)."""


def get_activities(
    start_date: str | None = None,
    end_date: str | None = None,
    type: str | None = None,
    account_id: str | None = None,
    ticker: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    *,
    services: Services | None = None,
) -> dict[str, Any]:
    """What the ``get_activities`` tool answers, as a plain function (for a REPL)."""
    from services.composition import configured_services

    hub = services or configured_services()
    answer = hub.activities.activities(
        start_date, end_date, type, account_id, ticker, limit, cursor
    )
    return marked(stamped(answer, hub.settings.provider_envs))


def get_income(
    period: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    *,
    services: Services | None = None,
) -> dict[str, Any]:
    """What the ``get_income`` tool answers, as a plain function (for a REPL)."""
    from services.composition import configured_services

    hub = services or configured_services()
    answer = hub.activities.income(period, start_date, end_date)
    return marked(stamped(answer, hub.settings.provider_envs))


DATE = "A date as YYYY-MM-DD (inclusive)."


def register(server: MCPServer, get_services: ServicesFactory) -> None:
    from mcp.types import ToolAnnotations

    read_only = ToolAnnotations(
        read_only_hint=True, idempotent_hint=True, destructive_hint=False, open_world_hint=True
    )

    @server.tool(
        name="get_activities",
        description=GET_ACTIVITIES_DOC,
        annotations=read_only.model_copy(update={"title": "Get account activity"}),
    )
    @tool_boundary
    async def get_activities_tool(
        start_date: Annotated[str | None, Field(description=DATE, max_length=10)] = None,
        end_date: Annotated[str | None, Field(description=DATE, max_length=10)] = None,
        type: Annotated[
            str | None,
            Field(
                description="buy, sell, dividend, interest, fee, tax, deposit, withdrawal, "
                "transfer, split or other; several comma-separated.",
                max_length=200,
            ),
        ] = None,
        account_id: Annotated[
            str | None, Field(description="One account's id.", max_length=100)
        ] = None,
        ticker: Annotated[str | None, Field(description="One ticker.", max_length=20)] = None,
        limit: Annotated[
            StrictInt | None, Field(description="Activities per page (default 100, at most 500).")
        ] = None,
        cursor: Annotated[
            str | None,
            Field(description="next_cursor of the previous page; leave out for the first."),
        ] = None,
    ) -> dict[str, Any]:
        import anyio.to_thread

        hub = await services_of(get_services)
        return await anyio.to_thread.run_sync(
            lambda: get_activities(
                start_date, end_date, type, account_id, ticker, limit, cursor, services=hub
            )
        )

    @server.tool(
        name="get_income",
        description=GET_INCOME_DOC,
        annotations=read_only.model_copy(update={"title": "Get dividends, interest and fees"}),
    )
    @tool_boundary
    async def get_income_tool(
        period: Annotated[
            str | None,
            Field(
                description="this_month, last_month, this_quarter, last_quarter, this_year, "
                "last_year, year_to_date (default) or last_12_months; or give the dates.",
                max_length=40,
            ),
        ] = None,
        start_date: Annotated[str | None, Field(description=DATE, max_length=10)] = None,
        end_date: Annotated[str | None, Field(description=DATE, max_length=10)] = None,
    ) -> dict[str, Any]:
        import anyio.to_thread

        hub = await services_of(get_services)
        return await anyio.to_thread.run_sync(
            lambda: get_income(period, start_date, end_date, services=hub)
        )
