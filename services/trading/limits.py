"""Limits over time: the value of a day's orders, and the units a SELL may still sell.

Both are counted from the audit tables inside the transaction that claims an order
for placement, after the claims of other processes are serialised (an advisory
lock on Postgres, the write lock on SQLite), so two processes cannot both squeeze
under a limit. They are also checked when an order is previewed, to refuse early.

* ``MAX_DAILY_ORDER_VALUE``: the worst-case values of the orders placed, being
  placed or of unknown outcome in the last 24 hours, buys and sells alike, per
  currency, plus this order.
* Units available to a SELL: the units held when the position was read, minus the
  units in the brokerage's open SELL orders (ours included), minus our own SELLs of
  that symbol in that account from the last 24 hours that are neither open at the
  broker nor yet seen in the holdings. A sell is seen in the holdings once they show
  at most what was held when it was claimed, less its quantity; a brokerage's own
  clock is never compared with ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from core.errors import Conflict
from services.models import TradeOrder, TradePreview
from services.single_flight import advisory_key

DAY = timedelta(hours=24)
# An order in one of these states may be (or is) at the broker: it counts.
COUNTED = ("placing", "placed", "unknown")


@dataclass(frozen=True)
class OrderLimits:
    max_daily_value: float

    def serialise_claims(self, conn: Connection, user_id: int) -> None:
        """One claim at a time per person, on every host (Postgres; SQLite locks itself)."""
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(advisory_key(f"orders:{user_id}"))))

    def check(
        self,
        conn: Connection,
        row: dict[str, Any],
        now: datetime,
        open_sell_order_ids: tuple[str, ...] = (),
    ) -> None:
        """Raise Conflict when ``row``'s order would break a limit; counts the others only.

        ``open_sell_order_ids`` are the broker's open SELL orders already counted in the
        row's ``open_sell_quantity``."""
        self._check_daily(conn, row, now)
        if row["side"] == "SELL" and row.get("held_quantity") is not None:
            self._check_units(conn, row, now, set(open_sell_order_ids))

    def _check_daily(self, conn: Connection, row: dict[str, Any], now: datetime) -> None:
        currency, value = row.get("currency") or "", float(row.get("estimated_value") or 0.0)
        placed = conn.execute(
            select(func.coalesce(func.sum(TradePreview.estimated_value), 0.0))
            .select_from(TradeOrder)
            .join(TradePreview, TradePreview.preview_id == TradeOrder.preview_id)
            .where(
                TradeOrder.user_id == row["user_id"],
                TradeOrder.claimed_at > now - DAY,
                TradeOrder.status.in_(COUNTED),
                TradeOrder.preview_id != row["preview_id"],
                TradePreview.currency == currency,
            )
        ).scalar_one()
        placed = float(placed or 0.0)
        total = placed + value
        if total > self.max_daily_value + 0.005:
            left = max(0.0, self.max_daily_value - placed)
            raise Conflict(
                f"this order ({value:,.2f} {currency}) would bring the orders of the last 24 "
                f"hours to {total:,.2f} {currency}, above MAX_DAILY_ORDER_VALUE "
                f"({self.max_daily_value:,.2f}); already placed or pending: {placed:,.2f} "
                f"{currency}, so {left:,.2f} {currency} is left. Nothing was placed."
            )

    def _check_units(
        self, conn: Connection, row: dict[str, Any], now: datetime, open_ids: set[str]
    ) -> None:
        held = float(row["held_quantity"] or 0.0)
        ours = conn.execute(
            select(
                TradePreview.quantity,
                TradePreview.held_quantity,
                TradeOrder.brokerage_order_id,
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
            for quantity, held_then, order_id in ours
            if order_id not in open_ids  # still open: already in open_sell_quantity
            and not _seen_in_holdings(held, held_then, float(quantity))
        )
        open_sells = float(row.get("open_sell_quantity") or 0.0)
        available = held - open_sells - sold
        if row["quantity"] > available + 1e-9:
            raise Conflict(
                f"cannot sell {row['quantity']:g} {row['symbol']}: {available:g} are available "
                f"({held:g} held, {open_sells:g} in open sell orders at the broker, {sold:g} "
                "sold through Brokerage Hub in the last 24 hours and not yet seen in the "
                "holdings). Nothing was placed."
            )


def _seen_in_holdings(held_now: float, held_then: float | None, quantity: float) -> bool:
    """Whether the holdings already show a sell: they hold at most what was held when it
    was claimed, less its quantity."""
    return held_then is not None and held_now <= float(held_then) - quantity + 1e-9
