"""SnapTrade as a broker: symbol search, order preview and order placement.

``SnapTradeBrokerAdapter`` is what the trading service talks to; like
``snaptrade_loader`` it maps SnapTrade's exceptions to ``services.errors``.
"""

from __future__ import annotations

from typing import Any


def _extract_authorization_id(authorization: Any) -> str | None:
    """An account's ``brokerage_authorization`` is a dict in some answers, a bare id in others."""
    if isinstance(authorization, dict):
        value = authorization.get("id")
        return str(value) if value else None
    if isinstance(authorization, str) and authorization:
        return authorization
    return None
