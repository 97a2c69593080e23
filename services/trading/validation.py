"""Everything that must hold before SnapTrade is asked for an order's impact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from core.errors import (
    BrokerageHubError,
    Conflict,
    ConnectionDisabled,
    InvalidInput,
    NotFound,
    ProviderError,
    TradingNotPermitted,
)
from providers.snaptrade.accounts import extract_authorization_id
from providers.snaptrade.broker import SnapTradeBrokerAdapter
from providers.snaptrade.connections import brokerage_name
from providers.snaptrade.errors import map_snaptrade_trading_error
from services.models import PositionRow
from services.trading.orders import OrderRequest, number
from services.users import user_id_for


@dataclass
class Progress:
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


class PreTradeValidator:
    """Checks an order against the account, the connection, the symbol and the limits."""

    def __init__(
        self,
        *,
        engine: Engine,
        user_email: str,
        adapter: Callable[[], SnapTradeBrokerAdapter],
        max_order_value: float,
    ) -> None:
        self._engine = engine
        self.user_email = user_email
        self._adapter = adapter
        self.max_order_value = max_order_value

    def account(self, account_id: str, progress: Progress) -> dict[str, Any]:
        accounts = self._adapter().list_accounts()
        for account in accounts:
            if str(account.get("id")) == account_id:
                progress.brokerage = str(account.get("institution_name") or "SnapTrade")
                progress.account_name = account.get("name")
                progress.authorization_id = extract_authorization_id(
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

    def validate(
        self,
        request: OrderRequest,
        *,
        progress: Progress | None = None,
        known_price: float | None = None,
    ) -> ValidatedOrder:
        """Everything that must hold before SnapTrade is asked for an order impact.

        The account exists and is the user's; its connection is a trade
        connection and not disabled; fractional quantities only where the
        brokerage allows them; the symbol resolves; the estimated value is at
        most MAX_ORDER_VALUE; a SELL does not exceed the held quantity.
        """
        progress = progress or Progress()
        adapter = self._adapter()
        account = self.account(request.account_id, progress)
        authorization_id = progress.authorization_id
        if authorization_id is None:
            raise Conflict(f"SnapTrade account {request.account_id} has no brokerage connection")

        def mapped(exc: ProviderError, endpoint: str) -> BrokerageHubError:
            return map_snaptrade_trading_error(
                exc, progress.brokerage, authorization_id=authorization_id, endpoint=endpoint
            )

        try:
            detail = adapter.authorization(authorization_id)
        except ProviderError as exc:
            raise mapped(exc, "connection detail") from exc
        if detail.get("brokerage") or detail.get("name"):
            progress.brokerage = brokerage_name(detail)
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
        symbol = pick_symbol(found, request.ticker, brokerage)
        universal_symbol_id = str(symbol["id"])
        currency = currency_code(symbol.get("currency")) or "USD"

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
            price = number(position.get("price")) if position else None
            source = "held position price" if price is not None else None
        if price is None:
            price, source = self.cached_price(request.ticker, currency)
        if price is None and known_price is not None:
            price, source = known_price, "previewed price"

        account_currency = currency_code((account.get("balance") or {}).get("total") or {})
        if price is not None:
            value = request.quantity * price
            if account_currency and account_currency != currency:
                raise InvalidInput(
                    f"{request.ticker} trades in {currency} but the account's currency is "
                    f"{account_currency}: the order value cannot be checked against "
                    "MAX_ORDER_VALUE without an exchange rate, so it is refused"
                )
            self.check_value(value, currency, request)

        held: float | None = None
        if request.side == "SELL":
            position = held_position()
            held = number(position.get("units")) if position else 0.0
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

    def check_value(self, value: float, currency: str, request: OrderRequest) -> None:
        if value > self.max_order_value:
            raise InvalidInput(
                f"the estimated value of {request.quantity:g} {request.ticker} is "
                f"{value:,.2f} {currency}, above MAX_ORDER_VALUE ({self.max_order_value:,.2f} "
                f"{currency}): use a smaller quantity, or raise MAX_ORDER_VALUE",
                field="quantity",
            )

    def cached_price(self, ticker: str, currency: str) -> tuple[float | None, str | None]:
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


# --- symbols ---------------------------------------------------------------------------


def currency_code(value: Any) -> str | None:
    if isinstance(value, dict):
        code = value.get("code") or value.get("currency")
        if isinstance(code, dict):
            code = code.get("code")
        return str(code) if code else None
    if isinstance(value, str) and value:
        return value
    return None


def pick_symbol(found: list[dict[str, Any]], ticker: str, brokerage: str) -> dict[str, Any]:
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
