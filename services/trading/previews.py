"""Previewing an order: validate, ask SnapTrade for its impact, value it at its worst case,
check the limits, and store it under our own unguessable preview id.

A preview places nothing. It can be placed only after a person confirms it, within
its life: min(SnapTrade's 5 minutes, ``PREVIEW_TTL_SECONDS``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core.errors import BrokerageHubError, MalformedResponse, ProviderError
from providers.snaptrade.broker import SnapTradeBrokerAdapter
from providers.snaptrade.errors import map_snaptrade_trading_error
from services.clock import Clock
from services.trading.audit import TradeAudit
from services.trading.limits import OrderLimits
from services.trading.orders import OrderRequest, new_preview_id, number, row_hash
from services.trading.policy import TradingPolicy
from services.trading.validation import PreTradeValidator, Progress, ValidatedOrder
from services.trading.valuation import OrderValue, worst_case_value

log = logging.getLogger(__name__)


class PreviewMaker:
    def __init__(
        self,
        *,
        engine: Engine,
        audit: TradeAudit,
        validator: PreTradeValidator,
        adapter: Callable[[], SnapTradeBrokerAdapter],
        policy: TradingPolicy,
        limits: OrderLimits,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._validator = validator
        self._adapter = adapter
        self._policy = policy
        self._limits = limits
        self._clock = clock

    def preview(
        self, request: OrderRequest, *, allow_far_limit: bool, requested_via: str
    ) -> dict[str, Any]:
        """The stored preview row (raises, after recording the refusal, when refused)."""
        progress = Progress()
        impact: dict[str, Any] | None = None
        try:
            order = self._validator.validate(request, progress=progress)
            if request.limit_price is not None or any(order.known_prices.values()):
                # What is already known refuses an order before SnapTrade is asked at all.
                early = self._value(request, order, order.known_prices, allow_far_limit)
                self._check_limits(self._limit_fields(request, order, early.value), order)
            # SnapTrade's 5 minutes start when it answers; counting from before is safe.
            requested_at = self._clock()
            impact = self._impact(request, order)
            trade = impact["trade"] if isinstance(impact.get("trade"), dict) else {}
            if not trade.get("id"):
                raise MalformedResponse(
                    "SnapTrade's order impact has no trade id",
                    provider="snaptrade",
                    endpoint="/trade/impact",
                )
            known = {**order.known_prices, "SnapTrade's order impact": number(trade.get("price"))}
            value = self._value(request, order, known, allow_far_limit)
            row = self._row(request, order, value, impact, requested_at, requested_via)
            self._check_limits(row, order)
        except BrokerageHubError as exc:
            self._audit.store_refused(request, progress, exc, requested_via, impact=impact)
            raise
        self._audit.insert_preview(row)
        log.info(
            "trade preview %s: %s %g %s in %s (%s)",
            row["preview_id"],
            request.side,
            request.quantity,
            order.symbol,
            request.account_id,
            requested_via,
        )
        return row

    def _check_limits(self, fields: dict[str, Any], order: ValidatedOrder) -> None:
        """The limits over time, for a clear answer now; the claim checks them again,
        atomically."""
        now = self._clock()
        fx = self._limits.converter(now)
        with self._engine.connect() as conn:
            self._limits.check(conn, fields, now, fx, order.open_sell_order_ids)

    def _limit_fields(
        self, request: OrderRequest, order: ValidatedOrder, value: float
    ) -> dict[str, Any]:
        """What the limits read of an order that has no preview row yet."""
        return {
            "preview_id": "",
            "user_id": self._audit.user_id(),
            "account_id": request.account_id,
            "symbol": order.symbol,
            "side": request.side,
            "quantity": request.quantity,
            "currency": order.currency,
            "estimated_value": value,
            "held_quantity": order.held_quantity,
            "open_sell_quantity": order.open_sell_quantity,
            "positions_fetched_at": order.positions_fetched_at,
        }

    def _value(
        self,
        request: OrderRequest,
        order: ValidatedOrder,
        known: dict[str, float | None],
        allow_far_limit: bool,
    ) -> OrderValue:
        return worst_case_value(
            request,
            known,
            order.currency,
            self._policy.value_rules,
            allow_far_limit=allow_far_limit,
        )

    def _impact(self, request: OrderRequest, order: ValidatedOrder) -> dict[str, Any]:
        try:
            return self._adapter().preview_order(
                account_id=request.account_id,
                action=request.side,
                universal_symbol_id=order.universal_symbol_id,
                order_type=request.order_type,
                time_in_force=request.time_in_force,
                units=request.quantity,
                price=request.limit_price,
            )
        except ProviderError as exc:
            raise map_snaptrade_trading_error(
                exc,
                order.brokerage,
                authorization_id=order.authorization_id,
                endpoint="order impact",
            ) from exc

    def _row(
        self,
        request: OrderRequest,
        order: ValidatedOrder,
        value: OrderValue,
        impact: dict[str, Any],
        requested_at: datetime,
        requested_via: str,
    ) -> dict[str, Any]:
        impacts = [i for i in impact.get("trade_impacts") or [] if isinstance(i, dict)]
        first = impacts[0] if impacts else {}
        skip = self._policy.skip_confirmation
        row: dict[str, Any] = {
            "preview_id": new_preview_id(),
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
            "estimated_price": value.price,
            "estimated_value": value.value,
            "price_source": (value.market_source or "limit price")[:30],
            "value_basis": value.basis,
            "market_price": value.market_price,
            "limit_discount_percent": value.limit_discount_percent,
            "held_quantity": order.held_quantity,
            "open_sell_quantity": order.open_sell_quantity,
            "positions_fetched_at": order.positions_fetched_at,
            "commission": number(first.get("estimated_commission")),
            "fees": number(first.get("forex_fees")),
            "remaining_cash": number(first.get("remaining_cash")),
            "provider_trade_id": str(impact["trade"]["id"]),
            "provider_answer": json.dumps(impact, default=str)[:20000],
            # In emulator demos (SKIP_ORDER_CONFIRMATION) no person is asked.
            "status": "confirmed" if skip else "previewed",
            "confirmed_via": "emulator-demo" if skip else None,
            "confirmed_at": requested_at if skip else None,
            "error": None,
            "created_at": requested_at,
            "expires_at": requested_at + self._policy.preview_lifetime,
            "updated_at": requested_at,
        }
        row["order_hash"] = row_hash(self._audit.user_email, row)
        return row
