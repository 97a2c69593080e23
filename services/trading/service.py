"""Trading through SnapTrade: preview, a person's confirmation, placement at most once, an audit.

1. :meth:`TradeExecutionService.preview_order` checks the order, asks SnapTrade for
   its impact (which changes nothing at the broker), values it at its worst case and
   checks the limits (``services.trading.previews``). It places nothing.
2. A person confirms it: through the MCP client's own question to them
   (elicitation), on the web app's trades page, or with the CLI (which asks for the
   web password). Those surfaces are the guards: :meth:`confirm` itself checks no
   password, so code that reaches the database and the secret store can call it (the
   README says so). A decline or a reject ends the preview for good.
3. :meth:`execute_order` places a confirmed preview, only with
   ``TRADING_ENABLED=true``, at most once: it is claimed in the database together
   with the limits over time (``services.trading.audit``) before SnapTrade is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from core.errors import (
    Conflict,
    InvalidInput,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
)
from providers.snaptrade.broker import SnapTradeBrokerAdapter
from providers.snaptrade.errors import map_snaptrade_trading_error
from services.clock import Clock
from services.trading.audit import TradeAudit
from services.trading.limits import OrderLimits, RateSource
from services.trading.orders import (
    TRADING_DISABLED_MESSAGE,
    OrderRequest,
    check_order_request,
    quoted,
)
from services.trading.policy import CONFIRMED_ON, TradingPolicy
from services.trading.previews import PreviewMaker
from services.trading.unusable import refuse_unusable
from services.trading.validation import PreTradeValidator, Progress
from services.trading.valuation import worst_case_value
from services.trading.views import (
    confirmation_message,
    order_view,
    preview_view,
    symbol_view,
    trade_list,
)

log = logging.getLogger(__name__)


class TradeExecutionService:
    def __init__(
        self,
        *,
        engine: Engine,
        user_email: str,
        adapter_factory: Callable[[], SnapTradeBrokerAdapter],
        clock: Clock,
        rates: RateSource,
        policy: TradingPolicy | None = None,
    ) -> None:
        self.user_email = user_email
        self.policy = policy or TradingPolicy()
        self._adapter_factory = adapter_factory
        self._adapter: SnapTradeBrokerAdapter | None = None
        self._clock = clock
        self._audit = TradeAudit(engine, user_email, clock)
        self._validator = PreTradeValidator(
            engine=engine, user_email=user_email, adapter=self.adapter, clock=clock
        )
        self._limits = OrderLimits(
            self.policy.max_daily_order_value, self.policy.base_currency, rates
        )
        self._previews = PreviewMaker(
            engine=engine,
            audit=self._audit,
            validator=self._validator,
            adapter=self.adapter,
            policy=self.policy,
            limits=self._limits,
            clock=clock,
        )

    @property
    def trading_enabled(self) -> bool:
        return self.policy.trading_enabled

    def adapter(self) -> SnapTradeBrokerAdapter:
        if self._adapter is None:
            self._adapter = self._adapter_factory()
        return self._adapter

    # --- symbols and previews ------------------------------------------------------------

    def search_symbol(self, account_id: str, ticker: str) -> list[dict[str, Any]]:
        """Symbols matching ``ticker`` that the account's brokerage can trade."""
        request = check_order_request(account_id, ticker, "BUY", 1)
        progress = Progress()
        self._validator.account(request.account_id, progress)
        try:
            found = self.adapter().search_symbol(request.account_id, request.ticker)
        except ProviderError as exc:
            raise map_snaptrade_trading_error(
                exc,
                progress.brokerage,
                authorization_id=progress.authorization_id,
                endpoint="symbol search",
            ) from exc
        return [symbol_view(s) for s in found]

    def preview_order(
        self,
        account_id: str,
        ticker: str,
        side: str,
        quantity: float,
        order_type: str = "Market",
        limit_price: float | None = None,
        time_in_force: str = "Day",
        *,
        allow_far_limit: bool = False,
        requested_via: str = "repl",
    ) -> dict[str, Any]:
        """Check the order, ask SnapTrade for its impact and store a preview; places nothing."""
        if not isinstance(allow_far_limit, bool):
            raise InvalidInput("allow_far_limit must be true or false", field="allow_far_limit")
        request = check_order_request(
            account_id,
            ticker,
            side,
            quantity,
            order_type,
            limit_price,
            time_in_force,
            max_quantity=self.policy.max_order_quantity,
        )
        row = self._previews.preview(
            request, allow_far_limit=allow_far_limit, requested_via=requested_via
        )
        return preview_view(row, self._clock(), self.policy)

    # --- a person's decision ---------------------------------------------------------------

    def confirmation(self, preview_id: str) -> dict[str, Any]:
        """What the person is asked before placement (raises if it could not be placed)."""
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._audit.load(preview_id)
        recorded = self._unusable(row, allow=("previewed", "confirmed"))
        if recorded is not None:
            return {"already_executed": True, "confirmed": True, "order": recorded, "message": None}
        return {
            "already_executed": False,
            "confirmed": row["status"] == "confirmed",
            "order": preview_view(row, self._clock(), self.policy),
            "message": confirmation_message(row),
        }

    def review(self, preview_id: str) -> dict[str, Any]:
        """A preview as the trades page shows it: the order in full, the question the person
        answers, whether it can still be decided (and why not), and its order if placed."""
        row = self._audit.load(preview_id)
        view = preview_view(row, self._clock(), self.policy)
        placed = self._audit.order_row(row["preview_id"])
        try:
            if not self.trading_enabled:
                raise Conflict(TRADING_DISABLED_MESSAGE)
            refuse_unusable(row, self._clock(), self.policy, self.user_email, allow=("previewed",))
            blocked = None if row["status"] == "previewed" else "already decided"
        except Conflict as exc:
            blocked = exc.message
        return {
            **view,
            "requested_via": row["requested_via"],
            "question": confirmation_message(row).splitlines(),
            "decidable": blocked is None,
            "why_not": blocked,
            "execution": order_view(row, placed, already=True) if placed else None,
        }

    def confirm(self, preview_id: str, *, via: str) -> dict[str, Any]:
        """A person confirmed the order (web page, CLI, or the MCP client's question).

        Checks no password or session: only the surfaces that call it do, so it is no
        guard against code that can call it directly."""
        if via not in CONFIRMED_ON:
            raise InvalidInput(f"unknown confirmation channel {via!r}", field="via")
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._audit.load(preview_id)
        self._unusable(row, allow=("previewed", "confirmed"))
        self._audit.decide(
            row["preview_id"], status="confirmed", via=via, from_statuses=("previewed",)
        )
        return preview_view(self._audit.load(preview_id), self._clock(), self.policy)

    def reject(self, preview_id: str, *, via: str) -> dict[str, Any]:
        """The person said no: the preview ends for good (a later execute is refused)."""
        row = self._audit.load(preview_id)
        if not self._audit.decide(
            row["preview_id"], status="rejected", via=via, from_statuses=("previewed", "confirmed")
        ):
            self._unusable(self._audit.load(preview_id), allow=())
        return preview_view(self._audit.load(preview_id), self._clock(), self.policy)

    def pending_confirmation(self, preview_id: str) -> dict[str, Any]:
        """Where and for how long a person can still confirm a preview; places nothing."""
        row = self._audit.load(preview_id)
        recorded = self._unusable(row, allow=("previewed", "confirmed"))
        if recorded is not None:
            return recorded
        view = preview_view(row, self._clock(), self.policy)
        page = self.policy.trades_page(row["preview_id"])
        where = f"on the trades page ({page})" if page else "on the web app's trades page"
        return {
            **view,
            "status": "pending_confirmation",
            "confirm_at": page,
            "message": (
                "Nothing was placed: this MCP client cannot ask the person to confirm. Ask "
                f"them to confirm it {where}, or in a terminal with `flask --app app "
                f"confirm-trade {row['preview_id']}`, within {view['expires_in_seconds']} "
                "seconds. Confirming there places the order; execute_trade then returns it."
            ),
        }

    def execute_if_confirmed(self, preview_id: str, *, requested_via: str) -> dict[str, Any]:
        """Place a preview a person already confirmed; otherwise say where they can."""
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        if self._audit.load(preview_id)["status"] == "previewed":
            return self.pending_confirmation(preview_id)
        return self.execute_order(preview_id, requested_via=requested_via)

    # --- placement ---------------------------------------------------------------------------

    def confirm_and_place(self, preview_id: str, *, via: str) -> dict[str, Any]:
        """A person confirmed where they can also place it (web page, CLI): both at once."""
        self.confirm(preview_id, via=via)
        return self.execute_order(preview_id, requested_via=via)

    def execute_order(self, preview_id: str, *, requested_via: str = "repl") -> dict[str, Any]:
        """Place a confirmed preview, at most once; a repeat returns the recorded order."""
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._audit.load(preview_id)
        recorded = self._unusable(row, allow=("confirmed",))
        if recorded is not None:
            return recorded
        request = OrderRequest(
            account_id=row["account_id"],
            ticker=row["symbol"],
            side=row["side"],
            quantity=float(row["quantity"]),
            order_type=row["order_type"],
            limit_price=row["limit_price"],
            time_in_force=row["time_in_force"],
        )
        # The order must still be valid now, and is valued and limited by today's facts.
        order = self._validator.validate(request, known_price=row["market_price"])
        if order.universal_symbol_id != row["universal_symbol_id"]:
            raise Conflict(
                f"{quoted(row['symbol'], 20)} now resolves to a different instrument than when "
                "it was previewed: preview the order again"
            )
        allowed_discount = row["limit_discount_percent"] is not None
        value = worst_case_value(
            request,
            {**order.known_prices, "the preview": row["market_price"]},
            order.currency,
            self.policy.value_rules,
            allow_far_limit=allowed_discount,
        )
        checked = {
            "estimated_value": max(value.value, float(row["estimated_value"] or 0.0)),
            "held_quantity": order.held_quantity,
            "open_sell_quantity": order.open_sell_quantity,
            "positions_fetched_at": order.positions_fetched_at,
        }
        fx = self._limits.converter(self._clock())
        if not self._audit.claim(
            row, requested_via, self._limits, checked, fx, order.open_sell_order_ids
        ):
            # Rejected, expired or taken since it was loaded: say which, as a first look would.
            recorded = self._unusable(self._audit.load(preview_id), allow=("confirmed",))
            if recorded is not None:
                return recorded
            raise Conflict(f"preview {preview_id} could not be claimed: preview the order again")
        return self._place(row, requested_via)

    def _place(self, row: dict[str, Any], requested_via: str) -> dict[str, Any]:
        preview_id = row["preview_id"]
        try:
            answer = self.adapter().place_order(str(row["provider_trade_id"]))
        except (ProviderUnavailable, MalformedResponse) as exc:
            # No answer, a 5xx or an unreadable 200 after sending: the order may be at the
            # broker. Never retry, and never call it failed.
            message = (
                f"SnapTrade did not confirm the order ({exc.message}). It may or may not have "
                f"been placed at {quoted(row['brokerage'])}: check the brokerage before ordering "
                "again. Brokerage Hub will not retry it."
            )
            self._audit.finish(row, status="unknown", order_status="unknown", error=message)
            raise ProviderUnavailable(
                message, provider="snaptrade", status=exc.status, code=exc.code
            ) from exc
        except ProviderError as exc:
            error = map_snaptrade_trading_error(
                exc,
                row["brokerage"],
                authorization_id=row["authorization_id"],
                endpoint="place order",
            )
            self._audit.finish(row, status="failed", order_status="failed", error=error.message)
            raise error from exc
        self._audit.finish(row, status="executed", order_status="placed", answer=answer)
        log.info(
            "order placed for preview %s: brokerage order %s (%s)",
            preview_id,
            answer.get("brokerage_order_id"),
            requested_via,
        )
        placed = order_view(
            self._audit.load(preview_id), self._audit.order_row(preview_id), already=False
        )
        return {**placed, **self.policy.describe()}

    def _unusable(self, row: dict[str, Any], *, allow: tuple[str, ...]) -> dict[str, Any] | None:
        """The recorded order of an executed preview; raises when ``row`` cannot go on."""
        recorded = refuse_unusable(row, self._clock(), self.policy, self.user_email, allow=allow)
        if recorded:
            return {
                **order_view(row, self._audit.order_row(row["preview_id"]), already=True),
                **self.policy.describe(),
            }
        return None

    # --- audit -----------------------------------------------------------------------------

    def list_trades(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent previews and orders, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 200:
            raise InvalidInput("limit must be a whole number from 1 to 200", field="limit")
        return trade_list(self._audit.recent(limit), self._clock())
