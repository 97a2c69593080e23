"""Linking brokerages: Plaid Hosted Link (``plaid_link``) and the SnapTrade connection
portal (``snaptrade_portal``)."""

from services.linking.removal import PlaidItemRemoval

__all__ = [
    "PlaidItemRemoval",
]
