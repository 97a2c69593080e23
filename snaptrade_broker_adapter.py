"""SnapTrade as a broker, under the names people import: a thin face over
``providers.snaptrade.broker`` and its trading-error messages. Nothing in the product
imports this module."""

from providers.snaptrade.accounts import extract_authorization_id as _extract_authorization_id
from providers.snaptrade.broker import SnapTradeBrokerAdapter
from providers.snaptrade.errors import MAPPED_TRADING_FAILURES, TRADING_1020_MESSAGE
from providers.snaptrade.errors import (
    map_snaptrade_trading_error as _map_snaptrade_trading_error,
)

__all__ = [
    "MAPPED_TRADING_FAILURES",
    "TRADING_1020_MESSAGE",
    "SnapTradeBrokerAdapter",
    "_extract_authorization_id",
    "_map_snaptrade_trading_error",
]
