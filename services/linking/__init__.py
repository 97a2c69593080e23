"""Linking brokerages: Plaid Hosted Link (``plaid_link``) and the SnapTrade connection
portal (``snaptrade_portal``).

Guarantees: an Item is billed from the moment its token is stored, so the token is stored
before anything else can fail; an institution already linked is refused before a second
Item exists; ending an Item (``removal``) is recorded and its token only scheduled for
deletion, recoverable for 7 days.
"""

from services.linking.link_store import LinkStore, forget_old_links
from services.linking.plaid_link import DEFAULT_POLL_SECONDS, PlaidLinkService
from services.linking.removal import PlaidItemRemoval, record_item_removed
from services.linking.snaptrade_portal import SnapTradePortalService

__all__ = [
    "DEFAULT_POLL_SECONDS",
    "LinkStore",
    "PlaidItemRemoval",
    "PlaidLinkService",
    "SnapTradePortalService",
    "forget_old_links",
    "record_item_removed",
]
