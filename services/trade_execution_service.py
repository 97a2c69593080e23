"""Trading through SnapTrade: validate, preview, place at most once, keep an audit of it all.

Every trade goes through a :class:`SnapTradeBrokerAdapter`:

1. :meth:`TradeExecutionService.preview_order` validates the order
   (:meth:`~TradeExecutionService._validate_pre_trade`), asks SnapTrade for its
   impact (``get_order_impact``, which changes nothing at the broker) and
   stores a preview under our own unguessable ``preview_id``, bound by a hash
   to the order's fields and account. It expires after
   min(SnapTrade's 5 minutes, ``PREVIEW_TTL_SECONDS``).
2. :meth:`TradeExecutionService.execute_order` places a previewed order, only
   with ``TRADING_ENABLED=true``, and at most once: the preview is claimed
   (``UPDATE ... WHERE status = 'previewed'``) and its order row inserted
   (``trade_orders.preview_id`` is UNIQUE) in one transaction BEFORE SnapTrade
   is called; the provider's answer is recorded afterwards. A repeated or
   concurrent execution gets the recorded order, never a second placement.

Both tables are the audit: who (user, surface), when, what, and SnapTrade's answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.errors import (
    BrokerageHubError,
    Conflict,
    ConnectionDisabled,
    InvalidInput,
    MalformedResponse,
    NotFound,
    ProviderError,
    ProviderUnavailable,
    TradingNotPermitted,
)
from services.models import PositionRow, TradeOrder, TradePreview
from services.users import ensure_user, user_id_for

if TYPE_CHECKING:
    from snaptrade_broker_adapter import SnapTradeBrokerAdapter

log = logging.getLogger(__name__)

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("Market", "Limit")
TIMES_IN_FORCE = ("Day", "GTC", "FOK", "IOC")
# A SnapTrade trade id from get_order_impact can be placed for 5 minutes.
SNAPTRADE_TRADE_LIFETIME = timedelta(minutes=5)
TRADING_DISABLED_MESSAGE = (
    "Trading is disabled in Brokerage Hub (TRADING_ENABLED=false, the default), so nothing "
    "was placed. To allow placing orders, set TRADING_ENABLED=true in the environment or in "
    "the .env file and restart Brokerage Hub (the MCP server or web app). Previews work "
    "either way."
)
_TICKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/: ]{0,19}")
_PREVIEW_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class OrderRequest:
    """What the caller asked for, already checked for shape (not against the broker)."""

    account_id: str
    ticker: str
    side: str
    quantity: float
    order_type: str
    limit_price: float | None
    time_in_force: str


@dataclass
class _Progress:
    """What validation has learned so far, for the audit row of a refused preview."""

    brokerage: str = "SnapTrade"
    account_name: str | None = None
    authorization_id: str | None = None


@dataclass(frozen=True)
class ValidatedOrder:
    request: OrderRequest
    account_name: str | None
    authorization_id: str
    brokerage: str
    universal_symbol_id: str
    symbol: str
    description: str | None
    currency: str
    estimated_price: float | None
    price_source: str | None
    held_quantity: float | None = None

    @property
    def estimated_value(self) -> float | None:
        if self.estimated_price is None:
            return None
        return round(self.request.quantity * self.estimated_price, 2)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value is not None else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _money_or_unknown(value: float | None) -> float | str:
    # SnapTrade not telling is not the same as zero: never show it as 0.
    return "unknown" if value is None else value


def order_hash(
    *,
    user_email: str,
    account_id: str,
    universal_symbol_id: str | None,
    symbol: str,
    side: str,
    quantity: float,
    order_type: str,
    limit_price: float | None,
    time_in_force: str,
    provider_trade_id: str | None,
) -> str:
    """The hash that binds a preview id to exactly one order in one account."""
    canonical = json.dumps(
        {
            "user": user_email,
            "account": account_id,
            "universal_symbol_id": universal_symbol_id,
            "symbol": symbol,
            "side": side,
            "quantity": repr(float(quantity)),
            "order_type": order_type,
            "limit_price": None if limit_price is None else repr(float(limit_price)),
            "time_in_force": time_in_force,
            "trade_id": provider_trade_id,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _row_hash(user_email: str, row: dict[str, Any]) -> str:
    return order_hash(
        user_email=user_email,
        account_id=row["account_id"],
        universal_symbol_id=row["universal_symbol_id"],
        symbol=row["symbol"],
        side=row["side"],
        quantity=row["quantity"],
        order_type=row["order_type"],
        limit_price=row["limit_price"],
        time_in_force=row["time_in_force"],
        provider_trade_id=row["provider_trade_id"],
    )


def check_order_request(
    account_id: Any,
    ticker: Any,
    side: Any,
    quantity: Any,
    order_type: Any = "Market",
    limit_price: Any = None,
    time_in_force: Any = "Day",
) -> OrderRequest:
    """Reject a malformed order before any provider is called."""
    if not isinstance(account_id, str) or not account_id.strip():
        raise InvalidInput("account_id is required (a SnapTrade account id)", field="account_id")
    if not isinstance(ticker, str) or not _TICKER.fullmatch(ticker.strip()):
        raise InvalidInput(
            f"ticker {ticker!r} is not a symbol such as AAPL or BRK.B", field="ticker"
        )
    side_text = side.strip().upper() if isinstance(side, str) else side
    if side_text not in SIDES:
        raise InvalidInput(f"unknown side {side!r}: allowed values are BUY or SELL", field="side")
    types = {t.lower(): t for t in ORDER_TYPES}
    order_type_text = types.get(order_type.strip().lower()) if isinstance(order_type, str) else None
    if order_type_text is None:
        raise InvalidInput(
            f"unknown order type {order_type!r}: allowed values are Market or Limit",
            field="order_type",
        )
    tifs = {t.lower(): t for t in TIMES_IN_FORCE}
    tif = tifs.get(time_in_force.strip().lower()) if isinstance(time_in_force, str) else None
    if tif is None:
        raise InvalidInput(
            f"unknown time in force {time_in_force!r}: allowed values are "
            + ", ".join(TIMES_IN_FORCE),
            field="time_in_force",
        )
    units = _positive_finite(quantity, "quantity")
    price: float | None = None
    if order_type_text == "Limit":
        if limit_price is None:
            raise InvalidInput("a Limit order needs a positive limit_price", field="limit_price")
        price = _positive_finite(limit_price, "limit_price")
    elif limit_price is not None:
        raise InvalidInput(
            "limit_price is only for Limit orders; leave it out for a Market order",
            field="limit_price",
        )
    return OrderRequest(
        account_id=account_id.strip(),
        ticker=ticker.strip().upper(),
        side=str(side_text),
        quantity=units,
        order_type=order_type_text,
        limit_price=price,
        time_in_force=tif,
    )


def _positive_finite(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a positive number, not {value!r}", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a positive number, not {value!r}", field=name) from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(
            f"{name} must be a positive, finite number, not {value!r}", field=name
        ) from None
    return number


class TradeExecutionService:
    def __init__(
        self,
        *,
        engine: Engine,
        user_email: str,
        adapter_factory: Callable[[], SnapTradeBrokerAdapter],
        clock: Callable[[], datetime],
        trading_enabled: bool = False,
        max_order_value: float = 10000.0,
        preview_ttl_seconds: int = 120,
    ) -> None:
        self._engine = engine
        self.user_email = user_email
        self._adapter_factory = adapter_factory
        self._adapter: SnapTradeBrokerAdapter | None = None
        self._clock = clock
        self.trading_enabled = trading_enabled
        self.max_order_value = max_order_value
        self.preview_lifetime = min(
            SNAPTRADE_TRADE_LIFETIME, timedelta(seconds=max(1, preview_ttl_seconds))
        )

    # --- plumbing -----------------------------------------------------------------------

    def adapter(self) -> SnapTradeBrokerAdapter:
        if self._adapter is None:
            self._adapter = self._adapter_factory()
        return self._adapter

    def _user_id(self) -> int:
        user_id = user_id_for(self._engine, self.user_email)
        if user_id is None:
            ensure_user(self._engine, self.user_email, self._clock)
            user_id = user_id_for(self._engine, self.user_email)
        assert user_id is not None
        return user_id

    # --- symbols ------------------------------------------------------------------------

    def search_symbol(self, account_id: str, ticker: str) -> list[dict[str, Any]]:
        """Symbols matching ``ticker`` that the account's brokerage can trade."""
        from snaptrade_broker_adapter import _map_snaptrade_trading_error

        request = check_order_request(account_id, ticker, "BUY", 1)
        progress = _Progress()
        self._account(request.account_id, progress)
        try:
            found = self.adapter().search_symbol(request.account_id, request.ticker)
        except ProviderError as exc:
            raise _map_snaptrade_trading_error(
                exc,
                progress.brokerage,
                authorization_id=progress.authorization_id,
                endpoint="symbol search",
            ) from exc
        return [_symbol_view(s) for s in found]

    # --- validation ---------------------------------------------------------------------

    def _account(self, account_id: str, progress: _Progress) -> dict[str, Any]:
        from snaptrade_broker_adapter import _extract_authorization_id

        accounts = self.adapter().list_accounts()
        for account in accounts:
            if str(account.get("id")) == account_id:
                progress.brokerage = str(account.get("institution_name") or "SnapTrade")
                progress.account_name = account.get("name")
                progress.authorization_id = _extract_authorization_id(
                    account.get("brokerage_authorization")
                )
                return account
        known = ", ".join(
            f"{a.get('id')} ({a.get('institution_name')} {a.get('name')})" for a in accounts
        )
        raise NotFound(
            f"no SnapTrade account {account_id!r} for {self.user_email}; "
            f"the accounts are: {known or 'none'}"
        )

    def _validate_pre_trade(
        self,
        request: OrderRequest,
        *,
        progress: _Progress | None = None,
        known_price: float | None = None,
    ) -> ValidatedOrder:
        """Everything that must hold before SnapTrade is asked for an order impact.

        The account exists and is the user's; its connection is a trade
        connection and not disabled; fractional quantities only where the
        brokerage allows them; the symbol resolves; the estimated value is at
        most MAX_ORDER_VALUE; a SELL does not exceed the held quantity.
        """
        from snaptrade_broker_adapter import _map_snaptrade_trading_error
        from snaptrade_loader import _brokerage_name

        progress = progress or _Progress()
        adapter = self.adapter()
        account = self._account(request.account_id, progress)
        authorization_id = progress.authorization_id
        if authorization_id is None:
            raise Conflict(f"SnapTrade account {request.account_id} has no brokerage connection")

        def mapped(exc: ProviderError, endpoint: str) -> BrokerageHubError:
            return _map_snaptrade_trading_error(
                exc, progress.brokerage, authorization_id=authorization_id, endpoint=endpoint
            )

        try:
            detail = adapter.authorization(authorization_id)
        except ProviderError as exc:
            raise mapped(exc, "connection detail") from exc
        if detail.get("brokerage") or detail.get("name"):
            progress.brokerage = _brokerage_name(detail)
        brokerage = progress.brokerage
        if detail.get("disabled"):
            raise mapped(
                ConnectionDisabled("disabled", provider="snaptrade", code="3003"),
                "connection detail",
            )
        if detail.get("type") != "trade":
            raise TradingNotPermitted(
                f"The {brokerage} connection is read-only (type {detail.get('type')!r}), so it "
                "cannot trade: reconnect it with trading access through the SnapTrade "
                f"connection portal (connection_type='trade', reconnect='{authorization_id}').",
                provider="snaptrade",
            )
        allows_fractional = (detail.get("brokerage") or {}).get("allows_fractional_units")
        if not request.quantity.is_integer() and allows_fractional is False:
            raise InvalidInput(
                f"{brokerage} does not accept fractional quantities: use a whole number "
                f"instead of {request.quantity:g}",
                field="quantity",
            )

        try:
            found = adapter.search_symbol(request.account_id, request.ticker)
        except ProviderError as exc:
            raise mapped(exc, "symbol search") from exc
        positions: list[dict[str, Any]] | None = None
        symbol = _pick_symbol(found, request.ticker, brokerage)
        universal_symbol_id = str(symbol["id"])
        currency = _currency_code(symbol.get("currency")) or "USD"

        def held_position() -> dict[str, Any] | None:
            nonlocal positions
            if positions is None:
                try:
                    positions = adapter.account_positions(request.account_id)
                except ProviderError as exc:
                    raise mapped(exc, "positions") from exc
            for position in positions:
                instrument = position.get("instrument") or {}
                if str(instrument.get("id")) == universal_symbol_id or (
                    str(instrument.get("symbol") or "").upper() == request.ticker
                ):
                    return position
            return None

        price, source = request.limit_price, "limit price" if request.limit_price else None
        if price is None:
            position = held_position()
            price = _number(position.get("price")) if position else None
            source = "held position price" if price is not None else None
        if price is None:
            price, source = self._cached_price(request.ticker, currency)
        if price is None and known_price is not None:
            price, source = known_price, "previewed price"

        account_currency = _currency_code((account.get("balance") or {}).get("total") or {})
        if price is not None:
            value = request.quantity * price
            if account_currency and account_currency != currency:
                raise InvalidInput(
                    f"{request.ticker} trades in {currency} but the account's currency is "
                    f"{account_currency}: the order value cannot be checked against "
                    "MAX_ORDER_VALUE without an exchange rate, so it is refused"
                )
            self._check_value(value, currency, request)

        held: float | None = None
        if request.side == "SELL":
            position = held_position()
            held = _number(position.get("units")) if position else 0.0
            held = held or 0.0
            if request.quantity > held + 1e-9:
                raise InvalidInput(
                    f"cannot sell {request.quantity:g} {request.ticker}: the account holds "
                    f"{held:g}",
                    field="quantity",
                )
        return ValidatedOrder(
            request=request,
            account_name=progress.account_name,
            authorization_id=authorization_id,
            brokerage=brokerage,
            universal_symbol_id=universal_symbol_id,
            symbol=str(symbol.get("symbol") or request.ticker),
            description=symbol.get("description"),
            currency=currency,
            estimated_price=price,
            price_source=source,
            held_quantity=held,
        )

    def _check_value(self, value: float, currency: str, request: OrderRequest) -> None:
        if value > self.max_order_value:
            raise InvalidInput(
                f"the estimated value of {request.quantity:g} {request.ticker} is "
                f"{value:,.2f} {currency}, above MAX_ORDER_VALUE ({self.max_order_value:,.2f} "
                f"{currency}): use a smaller quantity, or raise MAX_ORDER_VALUE",
                field="quantity",
            )

    def _cached_price(self, ticker: str, currency: str) -> tuple[float | None, str | None]:
        """The last price Brokerage Hub saw for this ticker in any account (positions cache)."""
        user_id = user_id_for(self._engine, self.user_email)
        if user_id is None:
            return None, None
        with self._engine.connect() as conn:
            row = conn.execute(
                select(PositionRow.price, PositionRow.as_of)
                .where(
                    PositionRow.user_id == user_id,
                    PositionRow.ticker == ticker,
                    PositionRow.currency == currency,
                    PositionRow.price.is_not(None),
                )
                .order_by(PositionRow.fetched_at.desc())
                .limit(1)
            ).first()
        if row is None:
            return None, None
        return float(row.price), "cached position price"

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
        from snaptrade_broker_adapter import _map_snaptrade_trading_error

        request = check_order_request(
            account_id, ticker, side, quantity, order_type, limit_price, time_in_force
        )
        progress = _Progress()
        try:
            order = self._validate_pre_trade(request, progress=progress)
        except ProviderError as exc:
            self._store_refused(request, progress, exc, requested_via)
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
            error = _map_snaptrade_trading_error(
                exc,
                order.brokerage,
                authorization_id=order.authorization_id,
                endpoint="order impact",
            )
            self._store_refused(request, progress, error, requested_via)
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
            price = _number(trade.get("price"))
            source = "SnapTrade order impact" if price is not None else None
        if price is None:
            error = InvalidInput(
                f"no price is known for {request.ticker}, so the value of a Market order cannot "
                "be checked against MAX_ORDER_VALUE: place a Limit order (with limit_price) "
                "instead",
                field="order_type",
            )
            self._store_refused(request, progress, error, requested_via, impact=impact)
            raise error
        value = round(request.quantity * price, 2)
        try:
            self._check_value(value, order.currency, request)
        except InvalidInput as error:
            self._store_refused(request, progress, error, requested_via, impact=impact)
            raise

        preview_id = secrets.token_urlsafe(24)
        values: dict[str, Any] = {
            "preview_id": preview_id,
            "user_id": self._user_id(),
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
            "commission": _number(first.get("estimated_commission")),
            "fees": _number(first.get("forex_fees")),
            "remaining_cash": _number(first.get("remaining_cash")),
            "provider_trade_id": str(trade_id),
            "provider_answer": json.dumps(impact, default=str)[:20000],
            "status": "previewed",
            "error": None,
            "created_at": requested_at,
            "expires_at": requested_at + self.preview_lifetime,
            "updated_at": requested_at,
        }
        values["order_hash"] = _row_hash(self.user_email, values)
        with self._engine.begin() as conn:
            conn.execute(insert(TradePreview).values(**values))
        log.info(
            "trade preview %s: %s %g %s in %s (%s)",
            preview_id,
            request.side,
            request.quantity,
            order.symbol,
            request.account_id,
            requested_via,
        )
        return self._preview_view(values)

    def _store_refused(
        self,
        request: OrderRequest,
        progress: _Progress,
        error: BrokerageHubError,
        requested_via: str,
        *,
        impact: dict[str, Any] | None = None,
    ) -> None:
        """A preview SnapTrade (or our value limit) refused stays in the audit, unusable."""
        now = self._clock()
        values: dict[str, Any] = {
            "preview_id": secrets.token_urlsafe(24),
            "user_id": self._user_id(),
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
        values["order_hash"] = _row_hash(self.user_email, values)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(TradePreview).values(**values))
        except Exception:  # the audit must not hide the refusal itself
            log.exception("could not record a refused trade preview")

    def _preview_view(self, row: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        expires_at = _aware(row["expires_at"])
        seconds_left = (
            max(0, int((expires_at - now).total_seconds())) if expires_at is not None else 0
        )
        view = {
            "preview_id": row["preview_id"],
            "status": _effective_status(row, now),
            "expires_at": _iso(expires_at),
            "expires_in_seconds": seconds_left,
            "order": _order_fields(row),
            "impact": _impact_fields(row),
            "trading_enabled": self.trading_enabled,
        }
        view["next_step"] = (
            "To place it, call execute_trade with this preview_id before it expires."
            if self.trading_enabled
            else "Trading is disabled (TRADING_ENABLED=false): this preview cannot be placed "
            "until TRADING_ENABLED=true is set and Brokerage Hub restarted."
        )
        return view

    # --- execution ----------------------------------------------------------------------

    def _load(self, preview_id: Any) -> dict[str, Any]:
        if not isinstance(preview_id, str) or not _PREVIEW_ID.fullmatch(preview_id):
            raise NotFound(f"unknown preview_id {preview_id!r}: preview the order first")
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

    def _order_row(self, preview_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(TradeOrder.__table__).where(TradeOrder.preview_id == preview_id)
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def _refuse_unusable(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded order for an executed preview; raises for any other unusable one."""
        status = row["status"]
        if status == "executed":
            return self._order_view(row, self._order_row(row["preview_id"]), already=True)
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
        expires_at = _aware(row["expires_at"])
        if expires_at is None or self._clock() >= expires_at:
            raise Conflict(
                f"preview {row['preview_id']} expired at {_iso(expires_at)} (previews last "
                f"{int(self.preview_lifetime.total_seconds())} s): preview the order again"
            )
        if _row_hash(self.user_email, row) != row["order_hash"]:
            raise Conflict(
                f"preview {row['preview_id']} no longer matches the order it was made for; "
                "preview the order again"
            )
        return None

    def confirmation(self, preview_id: str) -> dict[str, Any]:
        """What the person confirms before execution (raises if it could not be executed)."""
        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._load(preview_id)
        recorded = self._refuse_unusable(row)
        if recorded is not None:
            return {"already_executed": True, "order": recorded, "message": None}
        return {
            "already_executed": False,
            "order": self._preview_view(row),
            "message": confirmation_message(row),
        }

    def execute_order(self, preview_id: str, *, requested_via: str = "repl") -> dict[str, Any]:
        """Place a previewed order, at most once; a repeat returns the recorded order."""
        from snaptrade_broker_adapter import _map_snaptrade_trading_error

        if not self.trading_enabled:
            raise Conflict(TRADING_DISABLED_MESSAGE)
        row = self._load(preview_id)
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
        order = self._validate_pre_trade(request, known_price=row["estimated_price"])
        if order.universal_symbol_id != row["universal_symbol_id"]:
            raise Conflict(
                f"{row['symbol']} now resolves to a different instrument than when it was "
                "previewed: preview the order again"
            )

        if not self._claim(row, requested_via):
            recorded = self._refuse_unusable(self._load(preview_id))
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
            self._finish(row, status="unknown", order_status="unknown", error=message)
            raise ProviderUnavailable(
                message, provider="snaptrade", status=exc.status, code=exc.code
            ) from exc
        except ProviderError as exc:
            error = _map_snaptrade_trading_error(
                exc,
                row["brokerage"],
                authorization_id=row["authorization_id"],
                endpoint="place order",
            )
            self._finish(row, status="failed", order_status="failed", error=error.message)
            raise error from exc
        self._finish(row, status="executed", order_status="placed", answer=answer)
        log.info(
            "order placed for preview %s: brokerage order %s (%s)",
            preview_id,
            answer.get("brokerage_order_id"),
            requested_via,
        )
        return self._order_view(self._load(preview_id), self._order_row(preview_id), already=False)

    def _claim(self, row: dict[str, Any], requested_via: str) -> bool:
        """Atomically take the preview for placement: True for exactly one caller, ever."""
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                # The UPDATE comes first: on SQLite it takes the write lock before any read,
                # on Postgres a racing UPDATE waits for us and then finds the status changed.
                claimed = conn.execute(
                    update(TradePreview)
                    .where(
                        TradePreview.preview_id == row["preview_id"],
                        TradePreview.user_id == row["user_id"],
                        TradePreview.status == "previewed",
                        TradePreview.expires_at > now,
                    )
                    .values(status="placing", updated_at=now)
                ).rowcount
                if claimed != 1:
                    return False
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

    def _finish(
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

    def _order_view(
        self, row: dict[str, Any], order: dict[str, Any] | None, *, already: bool
    ) -> dict[str, Any]:
        answer = _json(order.get("provider_answer")) if order else {}
        return {
            "preview_id": row["preview_id"],
            "status": "placed" if order and order["status"] == "placed" else row["status"],
            "already_executed": already,
            "brokerage_order_id": order.get("brokerage_order_id") if order else None,
            "provider_status": order.get("provider_status") if order else None,
            "placed_at": _iso(order.get("completed_at")) if order else None,
            "filled_quantity": _number(answer.get("filled_quantity")),
            "execution_price": _number(answer.get("execution_price")),
            "order": _order_fields(row),
            "impact": _impact_fields(row),
        }

    # --- audit --------------------------------------------------------------------------

    def list_trades(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent previews and orders, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 200:
            raise InvalidInput("limit must be a whole number from 1 to 200", field="limit")
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
        now = self._clock()
        return [
            {
                "preview_id": r["preview_id"],
                "created_at": _iso(r["created_at"]),
                "requested_via": r["requested_via"],
                "status": _effective_status(r, now),
                "order": _order_fields(r),
                "impact": _impact_fields(r),
                "expires_at": _iso(r["expires_at"]),
                "error": r["error"],
                "execution": (
                    {
                        "status": r["order_status"],
                        "brokerage_order_id": r["brokerage_order_id"],
                        "provider_status": r["provider_status"],
                        "completed_at": _iso(r["completed_at"]),
                        "error": r["order_error"],
                    }
                    if r["order_status"]
                    else None
                ),
            }
            for r in rows
        ]


# --- views -----------------------------------------------------------------------------


def _json(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _effective_status(row: dict[str, Any], now: datetime) -> str:
    expires_at = _aware(row.get("expires_at"))
    if row["status"] == "previewed" and (expires_at is None or now >= expires_at):
        return "expired"
    return str(row["status"])


def _order_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "account_name": row.get("account_name"),
        "brokerage": row.get("brokerage"),
        "symbol": row["symbol"],
        "description": row.get("description"),
        "side": row["side"],
        "quantity": row["quantity"],
        "order_type": row["order_type"],
        "limit_price": row.get("limit_price"),
        "time_in_force": row["time_in_force"],
        "currency": row.get("currency"),
    }


def _impact_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "estimated_price": row.get("estimated_price"),
        "price_source": row.get("price_source"),
        "estimated_value": row.get("estimated_value"),
        "commission": _money_or_unknown(row.get("commission")),
        "fees": _money_or_unknown(row.get("fees")),
        "remaining_cash": row.get("remaining_cash"),
    }


def confirmation_message(row: dict[str, Any]) -> str:
    """The exact order, in words, for the person to confirm before it is placed."""
    currency = row.get("currency") or ""
    price = (
        f"limit {row['limit_price']:g} {currency}"
        if row["order_type"] == "Limit"
        else f"market (about {row['estimated_price']:g} {currency})"
    )
    value = row.get("estimated_value")
    value_text = f"{value:,.2f} {currency}" if value is not None else "unknown"
    commission = row.get("commission")
    commission_text = f"{commission:,.2f} {currency}" if commission is not None else "unknown"
    account = row.get("account_name") or ""
    return (
        f"Place this order at {row['brokerage']}?\n"
        f"Account: {account} ({row['account_id']})\n"
        f"Side: {row['side']}\n"
        f"Quantity: {row['quantity']:g}\n"
        f"Symbol: {row['symbol']}"
        + (f" ({row['description']})" if row.get("description") else "")
        + "\n"
        f"Order type: {row['order_type']} ({row['time_in_force']})\n"
        f"Price: {price}\n"
        f"Estimated value: {value_text}\n"
        f"Commission: {commission_text}"
    )


def _currency_code(value: Any) -> str | None:
    if isinstance(value, dict):
        code = value.get("code") or value.get("currency")
        if isinstance(code, dict):
            code = code.get("code")
        return str(code) if code else None
    if isinstance(value, str) and value:
        return value
    return None


def _symbol_view(symbol: dict[str, Any]) -> dict[str, Any]:
    exchange = symbol.get("exchange") if isinstance(symbol.get("exchange"), dict) else {}
    return {
        "symbol": symbol.get("symbol"),
        "description": symbol.get("description"),
        "universal_symbol_id": symbol.get("id"),
        "currency": _currency_code(symbol.get("currency")),
        "exchange": exchange.get("code") if exchange else None,
        "type": (symbol.get("type") or {}).get("description")
        if isinstance(symbol.get("type"), dict)
        else None,
    }


def _pick_symbol(found: list[dict[str, Any]], ticker: str, brokerage: str) -> dict[str, Any]:
    exact = [
        s
        for s in found
        if isinstance(s, dict)
        and s.get("id")
        and ticker in (str(s.get("symbol") or "").upper(), str(s.get("raw_symbol") or "").upper())
    ]
    distinct = {str(s["id"]): s for s in exact}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    if not distinct:
        near = ", ".join(sorted({str(s.get("symbol")) for s in found if isinstance(s, dict)})[:8])
        hint = f"; close matches: {near}" if near else ""
        raise NotFound(f"no symbol {ticker!r} is tradable at {brokerage}{hint}")
    listings = ", ".join(
        f"{s.get('symbol')} on {(s.get('exchange') or {}).get('code', '?')}"
        for s in distinct.values()
    )
    # Guessing between listings could trade the wrong instrument: refuse instead.
    raise InvalidInput(
        f"{ticker!r} matches several instruments at {brokerage} ({listings}); "
        "this order cannot say which one",
        field="ticker",
    )


# --- REPL helpers ------------------------------------------------------------------------


def _services_for(services: Any = None) -> Any:
    if services is None:
        from services.composition import build_services

        services = build_services()
    return services


def search_snaptrade_symbol(
    user_email: str, account_id: str, ticker: str, *, services: Any = None
) -> list[dict[str, Any]]:
    """REPL: ``search_snaptrade_symbol("me@example.com", account_id, "AAPL")``."""
    return _services_for(services).trading_for(user_email).search_symbol(account_id, ticker)


def preview_snaptrade_order(
    user_email: str,
    account_id: str,
    ticker: str,
    side: str,
    quantity: float,
    order_type: str = "Market",
    limit_price: float | None = None,
    *,
    services: Any = None,
) -> dict[str, Any]:
    """REPL: ``preview_snaptrade_order(email, account_id, "AAPL", "BUY", 1, "Market")``."""
    return (
        _services_for(services)
        .trading_for(user_email)
        .preview_order(
            account_id, ticker, side, quantity, order_type, limit_price, requested_via="repl"
        )
    )
