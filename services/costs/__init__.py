"""Costs: what each provider really costs, and what wastes money.

``ledger`` writes one ``provider_calls`` row per HTTP request to a provider (bounded by
housekeeping); ``report`` turns the billed Items and users, the ledger and the cache's
savings into the cost report, with a line for each waste and how to end it.

Guarantees: the ledger never breaks a provider call; a lookup the providers do not bill
(a Plaid webhook key that found nothing) is counted apart, not as a call.
"""

from services.costs.ledger import SqlCallLedger
from services.costs.report import CostService, Fees

__all__ = [
    "CostService",
    "Fees",
    "SqlCallLedger",
]
