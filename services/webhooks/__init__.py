"""Verified provider webhooks: stored once, applied at once (cheap state changes only).

``log`` stores each verified delivery under a UNIQUE key (a copy is a no-op) and tells an
event that arrives after a newer one of its kind; ``freshness`` keeps, per Plaid Item and
SnapTrade account, whether its holdings are due and whether webhooks reach it;
``receiver`` verifies (through ``providers``) and applies each event.
"""

from services.webhooks.freshness import EVERY_SOURCE, Freshness
from services.webhooks.savings import RefreshSavings

__all__ = [
    "EVERY_SOURCE",
    "Freshness",
    "RefreshSavings",
]
