"""Trading through SnapTrade: validate, preview, place at most once, keep an audit of it all.

Every trade goes through a :class:`SnapTradeBrokerAdapter`:

1. :meth:`TradeExecutionService.preview_order` validates the order
   (``services.trading.validation``), asks SnapTrade for its impact
   (``get_order_impact``, which changes nothing at the broker) and stores a preview
   under our own unguessable ``preview_id``, bound by a hash to the order's fields
   and account. It expires after min(SnapTrade's 5 minutes, ``PREVIEW_TTL_SECONDS``).
2. :meth:`TradeExecutionService.execute_order` places a previewed order, only with
   ``TRADING_ENABLED=true``, and at most once (``services.trading.audit``); the
   provider's answer is recorded afterwards. A repeated or concurrent execution
   gets the recorded order, never a second placement.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
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
from services.trading.orders import (
    SNAPTRADE_TRADE_LIFETIME,
    TRADING_DISABLED_MESSAGE,
    OrderRequest,
    aware,
    check_order_request,
    iso,
    number,
    row_hash,
)
from services.trading.validation import PreTradeValidator, Progress
from services.trading.views import (
    confirmation_message,
    effective_status,
    impact_fields,
    order_fields,
    order_view,
    preview_view,
    symbol_view,
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
        trading_enabled: bool = False,
        max_order_value: float = 10000.0,
        preview_ttl_seconds: int = 120,
    ) -> None:
        self.user_email = user_email
        self._adapter_factory = adapter_factory
        self._adapter: SnapTradeBrokerAdapter | None = None
        self._clock = clock
        self.trading_enabled = trading_enabled
        self.preview_lifetime = min(
            SNAPTRADE_TRADE_LIFETIME, timedelta(seconds=max(1, preview_ttl_seconds))
        )
        self._audit = TradeAudit(engine, user_email, clock)
        self._validator = PreTradeValidator(
            engine=engine,
            user_email=user_email,
            adapter=self.adapter,
            max_order_value=max_order_value,
        )

    @property
    def max_order_value(self) -> float:
        return self._validator.max_order_value

    # --- plumbing -----------------------------------------------------------------------

    def adapter(self) -> SnapTradeBrokerAdapter:
        if self._adapter is None:
            self._adapter = self._adapter_factory()
        return self._adapter

    # --- symbols ------------------------------------------------------------------------

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

    # --- preview ------------------------------------------------------------------------

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
        requested_via: str = "repl",
    ) -> dict[str, Any]:
        """Validate, ask SnapTrade for the order's impact and store a preview to execute later."""
        request = check_order_request(
            account_id, ticker, side, quantity, order_type, limit_price, time_in_force
        )
        progress = Progress()
        try:
            order = self._validator.validate(request, progress=progress)
        except ProviderError as exc:
            self._audit.store_refused(request, progress, exc, requested_via)
            raise
        # SnapTrade's 5 minutes start when it answers; counting from before the call is safe.
        requested_at = self._clock()
        try:
            impact = self.adapter().preview_order(
                account_id=request.account_id,
                action=request.side,
                universal_symbol_id=order.universal_symbol_id,
                order_type=request.order_type,
                time_in_force=request.time_in_force,
                units=request.quantity,
                price=request.limit_price,
            )
        except ProviderError as exc:
            error = map_snaptrade_trading_error(
                exc,
                order.brokerage,
                authorization_id=order.authorization_id,
                endpoint="order impact",
            )
            self._audit.store_refused(request, progress, error, requested_via)
            raise error from exc

        trade: dict[str, Any] = impact["trade"] if isinstance(impact.get("trade"), dict) else {}
        trade_id = trade.get("id")
        if not trade_id:
            raise MalformedResponse(
                "SnapTrade's order impact has no trade id",
                provider="snaptrade",
                endpoint="/trade/impact",
            )
        impacts = [i for i in impact.get("trade_impacts") or [] if isinstance(i, dict)]
        first = impacts[0] if impacts else {}
        price, source = order.estimated_price, order.price_source
        if price is None:
            price = number(trade.get("price"))
            source = "SnapTrade order impact" if price is not None else None
        if price is None:
            error = InvalidInput(
                f"no price is known for {request.ticker}, so the value of a Market order cannot "
                "be checked against MAX_ORDER_VALUE: place a Limit order (with limit_price) "
                "instead",
                field="order_type",
            )
            self._audit.store_refused(request, progress, error, requested_via, impact=impact)
            raise error
        value = round(request.quantity * price, 2)
        try:
            self._validator.check_value(value, order.currency, request)
        except InvalidInput as error:
            self._audit.store_refused(request, progress, error, requested_via, impact=impact)
            raise

        preview_id = secrets.token_urlsafe(24)
        values: dict[str, Any] = {
            "preview_id": preview_id,
            "user_id": self._audit.user_id(),
            "requested_via": requested_via,
            "account_id": request.account_id,
            "account_name": order.account_name,
            "authorization_id": order.authorization_id,
            "brokerage": order.brokerage,
            "symbol": order.symbol,
            "universal_symbol_id": order.universal_symbol_id,
            "description": order.description,
            "side": request.side,
            "order_type": request.order_type,
            "time_in_force": request.time_in_force,
            "quantity": request.quantity,
            "limit_price": request.limit_price,
            "currency": order.currency,
            "estimated_price": price,
            "estimated_value": value,
            "price_source": source,
            "commission": number(first.get("estimated_commission")),
            "fees": number(first.get("forex_fees")),
            "remaining_cash": number(first.get("remaining_cash")),
            "provider_trade_id": str(trade_id),
            "provider_answer": json.dumps(impact, default=str)[:20000],
            "status": "previewed",
            "error": None,
            "created_at": requested_at,
            "expires_at": requested_at + self.preview_lifetime,
            "updated_at": requested_at,
        }
        values["order_hash"] = row_hash(self.user_email, values)
        self._audit.insert_preview(values)
        log.info(
            "trade preview %s: %s %g %s in %s (%s)",
            preview_id,
            request.side,
            request.quantity,
            order.symbol,
            request.account_id,
            requested_via,
        )
        return preview_view(values, self._clock(), trading_enabled=self.trading_enabled)

    # --- execution ----------------------------------------------------------------------

    def _refuse_unusable(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded order for an executed preview; raises for any other unusable one."""
        status = row["status"]
        if status == "executed":
            return order_view(row, self._audit.order_row(row["preview_id"]), already=True)
        if status == "placing":
            raise Conflict(
                f"preview {row['preview_id']} is being placed by another request right now; "
                "it will not be placed twice. Call execute_trade again in a moment for its "
                "result (list_trades shows it too)."
            )
        if status == "refused":
            raise Conflict(
                f"preview {row['preview_id']} was refused ({row['error']}); nothing can be "
                "executed from it. Preview the order again."
            )
        if status == "unknown":
            raise Conflict(
                f"preview {row['preview_id']} was already used and SnapTrade never confirmed "
                "whether the order was placed: check the brokerage before ordering again."
            )
        if status != "previewed":
            raise Conflict(
                f"preview {row['preview_id']} was already used ({status}: {row['error']}): "
                "preview the order again"
            )
        expires_at = aware(row["expires_at"])
        if expires_at is None or self._clock() >= expires_at:
            raise Conflict(
                f"preview {row['preview_id']} expired at {iso(expires_at)} (previews last "
                f"{int(self.preview_lifetime.total_seconds())} s): preview the order again"
            )
        if row_hash(self.user_email, row) != row["order_hash"]:
            raise Conflict(
                f"preview {row['preview_id']} no longer matches the order it was made for; "
                "preview the order again"
            )
        return None

    def confirmation(self, preview_id: str) -> dict[str, Any]:
        """What the person confirms before execution (raises if it could not be executed)."""
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._audit.load(preview_id)
        recorded = self._refuse_unusable(row)
        if recorded is not None:
            return {"already_executed": True, "order": recorded, "message": None}
        return {
            "already_executed": False,
            "order": preview_view(row, self._clock(), trading_enabled=self.trading_enabled),
            "message": confirmation_message(row),
        }

    def execute_order(self, preview_id: str, *, requested_via: str = "repl") -> dict[str, Any]:
        """Place a previewed order, at most once; a repeat returns the recorded order."""
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._audit.load(preview_id)
        recorded = self._refuse_unusable(row)
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
        # The order must still be valid now, not only when it was previewed.
        order = self._validator.validate(request, known_price=row["estimated_price"])
        if order.universal_symbol_id != row["universal_symbol_id"]:
            raise Conflict(
                f"{row['symbol']} now resolves to a different instrument than when it was "
                "previewed: preview the order again"
            )

        if not self._audit.claim(row, requested_via):
            recorded = self._refuse_unusable(self._audit.load(preview_id))
            if recorded is not None:
                return recorded
            raise Conflict(f"preview {preview_id} could not be claimed: preview the order again")

        try:
            answer = self.adapter().place_order(str(row["provider_trade_id"]))
        except (ProviderUnavailable, MalformedResponse) as exc:
            # No answer, a 5xx or an unreadable 200 after sending: the order may be at the
            # broker. Never retry, and never call it failed.
            message = (
                f"SnapTrade did not confirm the order ({exc.message}). It may or may not have "
                f"been placed at {row['brokerage']}: check the brokerage before ordering again. "
                "Brokerage Hub will not retry it."
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
        return order_view(
            self._audit.load(preview_id), self._audit.order_row(preview_id), already=False
        )

    # --- audit --------------------------------------------------------------------------

    def list_trades(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent previews and orders, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 200:
            raise InvalidInput("limit must be a whole number from 1 to 200", field="limit")
        rows = self._audit.recent(limit)
        now = self._clock()
        return [
            {
                "preview_id": r["preview_id"],
                "created_at": iso(r["created_at"]),
                "requested_via": r["requested_via"],
                "status": effective_status(r, now),
                "order": order_fields(r),
                "impact": impact_fields(r),
                "expires_at": iso(r["expires_at"]),
                "error": r["error"],
                "execution": (
                    {
                        "status": r["order_status"],
                        "brokerage_order_id": r["brokerage_order_id"],
                        "provider_status": r["provider_status"],
                        "completed_at": iso(r["completed_at"]),
                        "error": r["order_error"],
                    }
                    if r["order_status"]
                    else None
                ),
            }
            for r in rows
        ]
