"""The trade audit tables: previews and orders, and the claim that places an order at most once.

The preview is claimed (``UPDATE ... WHERE status = 'previewed'``) and its order row
inserted (``trade_orders.preview_id`` is UNIQUE) in one transaction BEFORE SnapTrade
is called, so two racing executions (in any number of processes) cannot both reach
the broker.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import BrokerageHubError, NotFound
from services.clock import Clock
from services.fx import Converter
from services.models import TradeOrder, TradePreview
from services.storage import ensure_user, user_id_for
from services.trading.limits import OrderLimits
from services.trading.orders import PREVIEW_ID_SHAPE, OrderRequest, new_preview_id, row_hash
from services.trading.validation import Progress

log = logging.getLogger(__name__)


class TradeAudit:
    """The trade audit: every preview (refused ones too) and every order, who, when, what."""

    def __init__(self, engine: Engine, user_email: str, clock: Clock) -> None:
        self._engine = engine
        self.user_email = user_email
        self._clock = clock

    def user_id(self) -> int:
        user_id = user_id_for(self._engine, self.user_email)
        if user_id is None:
            ensure_user(self._engine, self.user_email, self._clock)
            user_id = user_id_for(self._engine, self.user_email)
        assert user_id is not None
        return user_id

    def insert_preview(self, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(TradePreview).values(**values))

    def store_refused(
        self,
        request: OrderRequest,
        progress: Progress,
        error: BrokerageHubError,
        requested_via: str,
        *,
        impact: dict[str, Any] | None = None,
    ) -> None:
        """A preview SnapTrade (or our value limit) refused stays in the audit, unusable."""
        now = self._clock()
        values: dict[str, Any] = {
            "preview_id": new_preview_id(),
            "user_id": self.user_id(),
            "requested_via": requested_via,
            "account_id": request.account_id,
            "account_name": progress.account_name,
            "authorization_id": progress.authorization_id,
            "brokerage": progress.brokerage,
            "symbol": request.ticker,
            "universal_symbol_id": None,
            "description": None,
            "side": request.side,
            "order_type": request.order_type,
            "time_in_force": request.time_in_force,
            "quantity": request.quantity,
            "limit_price": request.limit_price,
            "provider_trade_id": None,
            "provider_answer": json.dumps(impact if impact is not None else error.to_dict())[
                :20000
            ],
            "status": "refused",
            "error": error.message,
            "created_at": now,
            "expires_at": None,
            "updated_at": now,
        }
        values["order_hash"] = row_hash(self.user_email, values)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(TradePreview).values(**values))
        except Exception:  # the audit must not hide the refusal itself
            log.exception("could not record a refused trade preview")

    def load(self, preview_id: Any) -> dict[str, Any]:
        if not isinstance(preview_id, str) or not PREVIEW_ID_SHAPE.fullmatch(preview_id):
            # Quoted as given: the error boundary cuts a long value to a short prefix.
            raise NotFound(
                f"unknown preview_id {preview_id!r}: a preview_id is 16 to 64 letters, digits, "
                "'-' or '_', as preview_trade returns it"
            )
        user_id = user_id_for(self._engine, self.user_email)
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(TradePreview.__table__).where(
                        TradePreview.preview_id == preview_id, TradePreview.user_id == user_id
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"unknown preview_id {preview_id!r}: preview the order first")
        return dict(row)

    def order_row(self, preview_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(TradeOrder.__table__).where(TradeOrder.preview_id == preview_id)
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def claim(
        self,
        row: dict[str, Any],
        requested_via: str,
        limits: OrderLimits,
        checked: dict[str, Any],
        fx: Converter,
        open_sell_order_ids: tuple[str, ...] = (),
    ) -> bool:
        """Atomically take a confirmed preview for placement: True for exactly one caller.

        In the same transaction, with other claims of the person held back, the order
        is checked against the limits over time (``checked`` holds what the order was
        just validated with: value, units held...; ``fx`` the exchange rates the day's
        orders are counted at); over a limit, nothing is claimed and Conflict says why.
        """
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                limits.serialise_claims(conn, row["user_id"])
                # The UPDATE comes first: on SQLite it takes the write lock before any read,
                # on Postgres a racing UPDATE waits for us and then finds the status changed.
                claimed = conn.execute(
                    update(TradePreview)
                    .where(
                        TradePreview.preview_id == row["preview_id"],
                        TradePreview.user_id == row["user_id"],
                        TradePreview.status == "confirmed",
                        TradePreview.expires_at > now,
                    )
                    .values(status="placing", updated_at=now, **checked)
                ).rowcount
                if claimed != 1:
                    return False
                # Raises over a limit: the claim rolls back.
                limits.check(conn, {**row, **checked}, now, fx, open_sell_order_ids)
                conn.execute(
                    insert(TradeOrder).values(
                        preview_id=row["preview_id"],
                        user_id=row["user_id"],
                        requested_via=requested_via,
                        status="placing",
                        claimed_at=now,
                    )
                )
        except IntegrityError:
            # trade_orders.preview_id is UNIQUE: someone else holds this preview.
            return False
        return True

    def decide(
        self, preview_id: str, *, status: str, via: str, from_statuses: tuple[str, ...]
    ) -> bool:
        """A person confirmed or rejected a preview: True when it was still theirs to decide."""
        now = self._clock()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        conditions = [
            TradePreview.preview_id == preview_id,
            TradePreview.user_id == self.user_id(),
            TradePreview.status.in_(from_statuses),
        ]
        if status == "confirmed":
            values |= {"confirmed_via": via, "confirmed_at": now}
            conditions.append(TradePreview.expires_at > now)
        else:
            values["error"] = f"rejected by the person ({via})"
        with self._engine.begin() as conn:
            changed = conn.execute(update(TradePreview).where(*conditions).values(**values))
        return changed.rowcount == 1

    def finish(
        self,
        row: dict[str, Any],
        *,
        status: str,
        order_status: str,
        error: str | None = None,
        answer: dict[str, Any] | None = None,
    ) -> None:
        now = self._clock()
        order_values: dict[str, Any] = {
            "status": order_status,
            "error": error,
            "completed_at": now,
            "provider_answer": json.dumps(answer, default=str)[:20000] if answer else None,
        }
        if answer:
            order_values["brokerage_order_id"] = answer.get("brokerage_order_id")
            order_values["provider_status"] = answer.get("status")
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(TradeOrder)
                    .where(TradeOrder.preview_id == row["preview_id"])
                    .values(**order_values)
                )
                conn.execute(
                    update(TradePreview)
                    .where(TradePreview.preview_id == row["preview_id"])
                    .values(status=status, error=error, updated_at=now)
                )
        except Exception:
            # The broker already answered: the row stays "placing" and is never placed again.
            log.critical(
                "order for preview %s finished (%s) but could not be recorded",
                row["preview_id"],
                order_status,
                exc_info=True,
            )
            raise

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest previews with their orders, newest first."""
        user_id = user_id_for(self._engine, self.user_email)
        if user_id is None:
            return []
        previews = TradePreview.__table__
        orders = TradeOrder.__table__
        query = (
            select(
                previews,
                orders.c.status.label("order_status"),
                orders.c.brokerage_order_id,
                orders.c.provider_status,
                orders.c.completed_at,
                orders.c.error.label("order_error"),
            )
            .select_from(previews.outerjoin(orders, orders.c.preview_id == previews.c.preview_id))
            .where(previews.c.user_id == user_id)
            .order_by(previews.c.created_at.desc(), previews.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return rows
