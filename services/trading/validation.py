"""Everything that must hold before SnapTrade is asked for an order's impact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

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
from services.clock import Clock
from services.models import PositionRow
from services.storage import user_id_for
from services.trading.orders import OrderRequest, number, parse_time, quoted


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
    # Every market price known for the symbol, by where it came from.
    known_prices: dict[str, float | None] = field(default_factory=dict)
    # For a SELL: the units held, the units in open SELL orders at the broker (ours
    # included) and their order ids, and when SnapTrade says the position data is as of.
    held_quantity: float | None = None
    open_sell_quantity: float | None = None
    positions_fetched_at: datetime | None = None
    open_sell_order_ids: tuple[str, ...] = ()


class OpenSells(NamedTuple):
    units: float
    order_ids: tuple[str, ...]


class PreTradeValidator:
    """Checks an order against the account, the connection, the symbol and the limits."""

    def __init__(
        self,
        *,
        engine: Engine,
        user_email: str,
        adapter: Callable[[], SnapTradeBrokerAdapter],
        clock: Clock,
    ) -> None:
        self._engine = engine
        self.user_email = user_email
        self._adapter = adapter
        self._clock = clock

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
            f"{quoted(a.get('id'))} ({quoted(a.get('institution_name'))} {quoted(a.get('name'))})"
            for a in accounts
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
        brokerage allows them; the symbol resolves; a SELL does not exceed the units
        held less the open sells at the broker. The market prices known for the
        symbol are gathered for the order's worst-case value (``valuation``).
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
        brokerage = quoted(progress.brokerage)  # as the messages below quote it
        if detail.get("disabled"):
            raise mapped(
                ConnectionDisabled("disabled", provider="snaptrade", code="3003"),
                "connection detail",
            )
        if detail.get("type") != "trade":
            raise TradingNotPermitted(
                f"The {brokerage} connection is read-only (type {quoted(detail.get('type'))!r}), "
                "so it "
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
        positions_as_of: datetime | None = None
        symbol = pick_symbol(found, request.ticker, brokerage)
        universal_symbol_id = str(symbol["id"])
        currency = currency_code(symbol.get("currency")) or "USD"

        def held_position() -> dict[str, Any] | None:
            nonlocal positions, positions_as_of
            if positions is None:
                try:
                    positions, as_of = adapter.account_positions(request.account_id)
                except ProviderError as exc:
                    raise mapped(exc, "positions") from exc
                positions_as_of = parse_time(as_of)
            for position in positions:
                instrument = position.get("instrument") or {}
                if str(instrument.get("id")) == universal_symbol_id or (
                    str(instrument.get("symbol") or "").upper() == request.ticker
                ):
                    return position
            return None

        account_currency = currency_code((account.get("balance") or {}).get("total") or {})
        if account_currency and account_currency != currency:
            raise InvalidInput(
                f"{request.ticker} trades in {currency} but the account's currency is "
                f"{account_currency}: the order value cannot be checked against the limits "
                "without an exchange rate, so it is refused"
            )
        position = held_position()
        known_prices = {
            "the held position": number(position.get("price")) if position else None,
            "the positions cache": self.cached_price(request.ticker, currency),
            "the preview": known_price,
        }
        held = open_sells = fetched_at = None
        open_orders = OpenSells(0.0, ())
        if request.side == "SELL":
            held = (number(position.get("units")) if position else None) or 0.0
            fetched_at = positions_as_of or self._clock()
            try:
                open_orders = self._open_sells(request, universal_symbol_id)
            except ProviderError as exc:
                raise mapped(exc, "open orders") from exc
            open_sells = open_orders.units
            if request.quantity > held - open_sells + 1e-9:
                raise InvalidInput(
                    f"cannot sell {request.quantity:g} {request.ticker}: "
                    f"{max(0.0, held - open_sells):g} are available (the account holds "
                    f"{held:g}, {open_sells:g} of them in open sell orders at the broker)",
                    field="quantity",
                )
        return ValidatedOrder(
            request=request,
            account_name=progress.account_name,
            authorization_id=authorization_id,
            brokerage=progress.brokerage,  # stored as SnapTrade names it
            universal_symbol_id=universal_symbol_id,
            symbol=str(symbol.get("symbol") or request.ticker),
            description=symbol.get("description"),
            currency=currency,
            known_prices=known_prices,
            held_quantity=held,
            open_sell_quantity=open_sells,
            positions_fetched_at=fetched_at,
            open_sell_order_ids=open_orders.order_ids,
        )

    def _open_sells(self, request: OrderRequest, universal_symbol_id: str) -> OpenSells:
        """The account's open SELL orders of this symbol at the broker, ours included: the
        units they hold back, and their order ids (so the limits do not count ours twice)."""
        units, ids = 0.0, []
        for order in self._adapter().open_orders(request.account_id):
            same = (
                order["universal_symbol_id"] == universal_symbol_id
                or order["symbol"] == request.ticker
            )
            if same and order["action"].startswith("SELL"):
                units += order["open_units"]
                ids.append(order["brokerage_order_id"])
        return OpenSells(units, tuple(ids))

    def cached_price(self, ticker: str, currency: str) -> float | None:
        """The last price Brokerage Hub saw for this ticker in any account (positions cache)."""
        user_id = user_id_for(self._engine, self.user_email)
        if user_id is None:
            return None
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
        return float(row.price) if row is not None else None


# --- symbols ---------------------------------------------------------------------------


def currency_code(value: Any) -> str | None:
    """An ISO 4217-shaped code (three letters), or None: nothing else is shown as a currency."""
    code = value
    if isinstance(code, dict):
        code = code.get("code") or code.get("currency")
        if isinstance(code, dict):
            code = code.get("code")
    if isinstance(code, str) and len(code) == 3 and code.isascii() and code.isalpha():
        return code.upper()
    return None


def pick_symbol(found: list[dict[str, Any]], ticker: str, brokerage: str) -> dict[str, Any]:
    """The one instrument ``ticker`` names at the brokerage; a refusal quoting SnapTrade's
    symbols (neutralized) when there is none or more than one."""
    brokerage = quoted(brokerage)
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
        near = ", ".join(
            sorted({quoted(s.get("symbol"), 20) for s in found if isinstance(s, dict)})[:8]
        )
        hint = f"; close matches: {near}" if near else ""
        raise NotFound(f"no symbol {ticker!r} is tradable at {brokerage}{hint}")
    listings = ", ".join(
        f"{quoted(s.get('symbol'), 20)} on {quoted((s.get('exchange') or {}).get('code', '?'), 20)}"
        for s in distinct.values()
    )
    # Guessing between listings could trade the wrong instrument: refuse instead.
    raise InvalidInput(
        f"{ticker!r} matches several instruments at {brokerage} ({listings}); "
        "this order cannot say which one",
        field="ticker",
    )
