"""Verified provider webhooks: stored once, applied at once (cheap state changes only).

``log`` stores each verified delivery under a UNIQUE key (a copy is a no-op) and tells an
event that arrives after a newer one of its kind; ``freshness`` keeps, per Plaid Item and
SnapTrade account, whether its holdings are due and whether webhooks reach it;
``receiver`` verifies (through ``providers``) and applies each event.

Guarantees: an unverified delivery changes nothing and costs no key lookup unless it names
an Item or link of this hub; a copy (another worker's, or a resend) is applied once; an
event sent before one already applied never moves a state backwards.
"""

from services.webhooks.apply import EventEffects
from services.webhooks.freshness import EVERY_SOURCE, Freshness, FreshnessStore
from services.webhooks.log import forget_old_events
from services.webhooks.plaid_items import update_plaid_webhooks
from services.webhooks.plaid_keys import PlaidKeyStore
from services.webhooks.receiver import WebhookReceiver
from services.webhooks.savings import RefreshSavings

__all__ = [
    "EVERY_SOURCE",
    "EventEffects",
    "Freshness",
    "FreshnessStore",
    "PlaidKeyStore",
    "RefreshSavings",
    "WebhookReceiver",
    "forget_old_events",
    "update_plaid_webhooks",
]
