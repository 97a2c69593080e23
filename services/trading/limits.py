"""Limits over time: the value of a day's orders, and the units a SELL may still sell.

Both are counted from the audit tables inside the transaction that claims an order
for placement, after the claims of other processes are serialised (an advisory
lock on Postgres, the write lock on SQLite), so two processes cannot both squeeze
under a limit. They are also checked when an order is previewed, to refuse early.

* ``MAX_DAILY_ORDER_VALUE``, in ``BASE_CURRENCY``: the worst-case values of the orders
  placed, being placed or of unknown outcome in the last 24 hours, buys and sells alike,
  plus this order, each converted at the stored exchange rates (``services.fx``). An
  amount in a currency with no rate is never counted 1:1: the order is refused.
* Units available to a SELL: the units held when the position was read, minus the
  units in the brokerage's open SELL orders (ours included), minus our own SELLs of
  that symbol in that account from the last 24 hours that are no longer open at the
  broker and not yet in those holdings. A sell is not yet in them when it was claimed
  after the position data is dated (SnapTrade's ``as_of``), or when the holdings do not
  show it (they hold more than what was held when it was claimed, less its quantity):
  either sign counts it, so a brokerage clock ahead of ours, or holdings cached from
  before a fill, can only make us count more, never less.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, func, select

from core.errors import Conflict
from services.fx import Converter, RateSnapshot
from services.models import TradeOrder, TradePreview
from services.single_flight import advisory_key
from services.trading.orders import aware, quoted

DAY = timedelta(hours=24)
# An order in one of these states may be (or is) at the broker: it counts.
COUNTED = ("placing", "placed", "unknown")


class RateSource(Protocol):
    """The stored exchange rates (``services.fx.store.FxStore``)."""

    def snapshot(self, on: date) -> RateSnapshot: ...


@dataclass(frozen=True)
class OrderLimits:
    max_daily_value: float
    base_currency: str
    rates: RateSource

    def converter(self, now: datetime) -> Converter:
        """The rates the day's orders are counted at: read before a claim's transaction
        begins (a first read seeds the table, which must not wait for our own lock)."""
        return Converter(self.base_currency, self.rates.snapshot(now.astimezone(UTC).date()))

    def serialise_claims(self, conn: Connection, user_id: int) -> None:
        """One claim at a time per person, on every host (Postgres; SQLite locks itself)."""
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(advisory_key(f"orders:{user_id}"))))

    def check(
        self,
        conn: Connection,
        row: dict[str, Any],
        now: datetime,
        fx: Converter,
        open_sell_order_ids: tuple[str, ...] = (),
    ) -> None:
        """Raise Conflict when ``row``'s order would break a limit; counts the others only.

        ``open_sell_order_ids`` are the broker's open SELL orders already counted in the
        row's ``open_sell_quantity``."""
        self._check_daily(conn, row, now, fx)
        if row["side"] == "SELL" and row.get("held_quantity") is not None:
            self._check_units(conn, row, now, set(open_sell_order_ids))

    def _check_daily(
        self, conn: Connection, row: dict[str, Any], now: datetime, fx: Converter
    ) -> None:
        base = fx.base
        currency, value = row.get("currency") or "", float(row.get("estimated_value") or 0.0)
        value_base = self._in_base(fx, value, currency, "this order")
        by_currency = conn.execute(
            select(
                TradePreview.currency,
                func.coalesce(func.sum(TradePreview.estimated_value), 0.0),
            )
            .select_from(TradeOrder)
            .join(TradePreview, TradePreview.preview_id == TradeOrder.preview_id)
            .where(
                TradeOrder.user_id == row["user_id"],
                TradeOrder.claimed_at > now - DAY,
                TradeOrder.status.in_(COUNTED),
                TradeOrder.preview_id != row["preview_id"],
            )
            .group_by(TradePreview.currency)
        ).all()
        placed = sum(
            self._in_base(fx, float(amount or 0.0), code or "", "an order of the last 24 hours")
            for code, amount in by_currency
        )
        total = placed + value_base
        if total > self.max_daily_value + 0.005:
            left = max(0.0, self.max_daily_value - placed)
            this = f"{value:,.2f} {currency}"
            if currency != base:
                this += f", {value_base:,.2f} {base}"
            raise Conflict(
                f"this order ({this}) would bring the orders of the last 24 hours to "
                f"{total:,.2f} {base}, above MAX_DAILY_ORDER_VALUE ({self.max_daily_value:,.2f} "
                f"{base}, counted in BASE_CURRENCY at the stored exchange rates); already "
                f"placed or pending: {placed:,.2f} {base}, so {left:,.2f} {base} is left. "
                "Nothing was placed."
            )

    def _in_base(self, fx: Converter, amount: float, currency: str, what: str) -> float:
        converted = fx.to_base(amount, currency) if currency else None
        if converted is None:
            # Counting it 1:1, or leaving it out, would let the day's orders pass the cap.
            raise Conflict(
                f"{what} is in {quoted(currency, 10) or 'an unknown currency'}, which has no "
                f"exchange rate to {fx.base} (BASE_CURRENCY): it cannot be counted toward "
                "MAX_DAILY_ORDER_VALUE, so the order is refused. Nothing was placed."
            )
        return converted

    def _check_units(
        self, conn: Connection, row: dict[str, Any], now: datetime, open_ids: set[str]
    ) -> None:
        held = float(row["held_quantity"] or 0.0)
        data_as_of = aware(row.get("positions_fetched_at"))
        ours = conn.execute(
            select(
                TradePreview.quantity,
                TradePreview.held_quantity,
                TradeOrder.brokerage_order_id,
                TradeOrder.claimed_at,
            )
            .select_from(TradeOrder)
            .join(TradePreview, TradePreview.preview_id == TradeOrder.preview_id)
            .where(
                TradeOrder.user_id == row["user_id"],
                TradeOrder.status.in_(COUNTED),
                TradeOrder.claimed_at > now - DAY,
                TradeOrder.preview_id != row["preview_id"],
                TradePreview.side == "SELL",
                TradePreview.account_id == row["account_id"],
                TradePreview.symbol == row["symbol"],
            )
        ).all()
        sold = sum(
            float(quantity)
            for quantity, held_then, order_id, claimed_at in ours
            if order_id not in open_ids  # still open: already in open_sell_quantity
            and (
                _after(claimed_at, data_as_of)
                or not _seen_in_holdings(held, held_then, float(quantity))
            )
        )
        open_sells = float(row.get("open_sell_quantity") or 0.0)
        available = held - open_sells - sold
        if row["quantity"] > available + 1e-9:
            symbol = quoted(row["symbol"], 20)
            raise Conflict(
                f"cannot sell {row['quantity']:g} {symbol}: {available:g} are available "
                f"({held:g} held, {open_sells:g} in open sell orders at the broker, {sold:g} "
                "sold through Brokerage Hub in the last 24 hours and not yet in those "
                "holdings). Nothing was placed."
            )


def _after(claimed_at: datetime | None, data_as_of: datetime | None) -> bool:
    """Whether a sell was claimed after the position data is dated: not in it yet."""
    claimed = aware(claimed_at)
    return claimed is not None and data_as_of is not None and claimed > data_as_of


def _seen_in_holdings(held_now: float, held_then: float | None, quantity: float) -> bool:
    """Whether the holdings already show a sell: they hold at most what was held when it
    was claimed, less its quantity."""
    return held_then is not None and held_now <= float(held_then) - quantity + 1e-9
