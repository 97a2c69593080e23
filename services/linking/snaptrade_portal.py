"""Connecting a brokerage through the SnapTrade connection portal.

The person is registered with SnapTrade on first use (the user secret goes to
``snaptrade/user_secret/<email>``), sent to the connection portal, and comes back
to our redirect URL, where SnapTrade positions are fetched. Reconnecting (a
disabled connection, or read -> trade) is the portal with ``reconnect=<authorization id>``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from core.errors import BrokerageHubError, InvalidInput, NotFound
from core.redaction import register_secret
from core.secret_names import snaptrade_user_secret_name
from providers.snaptrade.connections import login_snaptrade_user, register_snaptrade_user
from services.clock import Clock
from services.linking.common import KEEP_FOR, UrlForId, checked_authorization_id, checked_web_url
from services.position_service import PositionService
from services.provider_access import ProviderAccess

log = logging.getLogger(__name__)

CONNECTION_TYPES = ("read", "trade")


@dataclass
class PortalFlow:
    """One trip through the SnapTrade connection portal, until the redirect back."""

    flow_id: str
    connection_type: str
    reconnect: str | None
    portal_url: str
    created_at: datetime


@dataclass(frozen=True)
class ConnectOutcome:
    ok: bool
    message: str


class SnapTradePortalService:
    """Registers the person with SnapTrade and opens and closes trips through the portal."""

    def __init__(self, *, access: ProviderAccess, positions: PositionService, clock: Clock) -> None:
        self._access = access
        self._positions = positions
        self._clock = clock
        self._flows: dict[str, PortalFlow] = {}
        self._lock = threading.Lock()
        self._register_lock = threading.Lock()

    def snaptrade_user_secret(self, *, register: bool = False) -> str | None:
        """The stored user secret; with ``register`` the person is registered first if needed."""
        name = snaptrade_user_secret_name(self._access.user_email)
        if self._access.secret_store.exists(name):
            return self._access.secret_store.get(name)
        if not register:
            return None

        with self._register_lock:
            if self._access.secret_store.exists(name):
                return self._access.secret_store.get(name)
            secret = register_snaptrade_user(
                self._access.user_email, self._access.snaptrade_client()
            )
            register_secret(secret)
            # SnapTrade shows the secret once: store it before anything else can fail.
            self._access.secret_store.put(name, secret)
            log.info("registered %s with SnapTrade", self._access.user_email)
            return secret

    def start_snaptrade_connection(
        self,
        connection_type: str,
        reconnect: str | None = None,
        *,
        return_url: UrlForId | None = None,
    ) -> PortalFlow:
        """Open the connection portal: a new connection, or ``reconnect`` an existing one.

        ``return_url(flow_id)`` is where the portal sends the person back.
        """

        if connection_type not in CONNECTION_TYPES:
            raise InvalidInput(
                f"unknown connection_type {connection_type!r}: allowed values are read, trade",
                field="connection_type",
            )
        reconnect = checked_authorization_id(reconnect)
        secret = self.snaptrade_user_secret(register=True)
        assert secret is not None
        flow_id = secrets.token_urlsafe(16)
        answer = login_snaptrade_user(
            self._access.snaptrade_client(),
            self._access.user_email,
            secret,
            connection_type=connection_type,
            reconnect=reconnect,
            custom_redirect=return_url(flow_id) if return_url else None,
        )
        flow = PortalFlow(
            flow_id=flow_id,
            connection_type=connection_type,
            reconnect=reconnect,
            portal_url=checked_web_url(answer.get("redirectURI"), "redirectURI"),
            created_at=self._clock(),
        )
        with self._lock:
            self._forget_old()
            self._flows[flow_id] = flow
        return flow

    def snaptrade_flow(self, flow_id: str) -> PortalFlow:
        with self._lock:
            flow = self._flows.get(flow_id)
        if flow is None:
            raise NotFound("unknown or already used SnapTrade connection link")
        return flow

    def finish_snaptrade_connection(self, flow_id: str) -> ConnectOutcome:
        """The person is back from the portal: fetch SnapTrade positions now (once per flow)."""
        with self._lock:
            flow = self._flows.pop(flow_id, None)
        if flow is None:
            raise NotFound("unknown or already used SnapTrade connection link")
        done = "reconnected" if flow.reconnect else "connected"
        try:
            self._positions.refresh_provider_positions("snaptrade")
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            return ConnectOutcome(
                False,
                f"SnapTrade {done}, but fetching positions failed ({message}). A new "
                "connection can take a few minutes to sync: refresh SnapTrade shortly.",
            )
        return ConnectOutcome(True, f"SnapTrade {done}; positions are up to date.")

    def _forget_old(self) -> None:
        """Drop unused flows older than KEEP_FOR (caller holds the lock)."""
        cutoff = self._clock() - KEEP_FOR
        for flow_id, flow in list(self._flows.items()):
            if flow.created_at < cutoff:
                del self._flows[flow_id]
