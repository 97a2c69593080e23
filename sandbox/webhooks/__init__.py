"""The webhooks the emulator sends, signed exactly as Plaid and SnapTrade sign theirs.

``outbox`` queues them per emulator and sends them in order from a background thread,
applies the delivery faults (late, duplicate, reorder, forged, unsigned) and records every
attempt; ``signing`` holds Plaid's ES256 key ring (kept in the shared state) and
SnapTrade's HMAC. What each provider sends, and when, is the provider's own business:
``sandbox.plaid.webhooks`` and ``sandbox.snaptrade.webhooks``.

Where the webhook state lives, and what the controls' resets do to it:

* the queue, the delivery faults, the record of deliveries and SnapTrade's dashboard URL
  belong to one emulator (memory). ``clear()`` drops the delivery faults and sends a webhook
  held by "reorder"; ``reset_counts()`` forgets the record (``wait_for_webhooks`` counts
  from 0 again); neither changes the URL.
* Plaid Items' webhook URLs and Plaid's signing keys are in the shared state, seen by every
  emulator process on the same state file. ``reset_state()`` drops both: the seeded Items
  have no URL again and the next webhook is signed by a new key (new kid).
"""

# Re-exports only: the submodules import each other, never this package.
from sandbox.webhooks.outbox import (
    DELIVERY_TIMEOUT_SECONDS,
    LATE_SECONDS,
    WEBHOOK_FAULTS,
    Outbox,
    WebhookDelivery,
    outbox_for,
)
from sandbox.webhooks.signing import PlaidKeyRing, sign_snaptrade

__all__ = [
    "DELIVERY_TIMEOUT_SECONDS",
    "LATE_SECONDS",
    "WEBHOOK_FAULTS",
    "Outbox",
    "PlaidKeyRing",
    "WebhookDelivery",
    "outbox_for",
    "sign_snaptrade",
]
