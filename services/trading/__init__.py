"""Trading through SnapTrade: order checks (``orders``, ``validation``), limits and valuation
(``limits``, ``valuation``, ``policy``), previews and whether one can go on (``previews``,
``unusable``), the audit store (``audit``), the orchestrating service (``service``) and what
the surfaces show (``views``).

Guarantees: every order is checked before any provider call; a person confirms every
order (an assistant can ask, never decide); an order is placed at most once (a claim and a
UNIQUE preview id), and a placement with no readable answer is recorded as unknown, never
retried; limits count every open sell over 24 hours in the base currency.
"""

from services.trading.orders import OrderRequest, check_order_request, order_hash
from services.trading.policy import TradingPolicy
from services.trading.service import TradeExecutionService
from services.trading.views import confirmation_message

__all__ = [
    "OrderRequest",
    "TradeExecutionService",
    "TradingPolicy",
    "check_order_request",
    "confirmation_message",
    "order_hash",
]
