"""Connecting a brokerage through the SnapTrade connection portal.

The person is registered with SnapTrade on first use (the user secret goes to
``snaptrade/user_secret/<email>``), sent to the connection portal, and comes back to
our redirect URL. Each trip is a row (``snaptrade_portal_flows``), so the return may
reach any worker on any host. The return page says what actually happened: the
connections are listed before the trip and again on return, and only a new, repaired
or upgraded connection counts (then SnapTrade positions are fetched); coming back
without finishing the portal says that nothing changed. Reconnecting (a disabled
connection, or read -> trade) is the portal with ``reconnect=<authorization id>``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from core.errors import BrokerageHubError, InvalidInput, NotFound
from core.redaction import register_secret
from core.secret_names import snaptrade_user_secret_name
from providers.snaptrade.connections import (
    list_snaptrade_connections,
    login_snaptrade_user,
    register_snaptrade_user,
)
from services.clock import Clock
from services.connections import ProviderAccess
from services.linking.common import UrlForId, checked_authorization_id, checked_web_url
from services.linking.link_store import UNKNOWN_FLOW, LinkStore, PortalFlow
from services.positions import PositionService
from services.single_flight import SingleFlight

log = logging.getLogger(__name__)

CONNECTION_TYPES = ("read", "trade")


@dataclass(frozen=True)
class ConnectOutcome:
    ok: bool
    message: str


class SnapTradePortalService:
    """Registers the person with SnapTrade and opens and closes trips through the portal."""

    def __init__(
        self,
        *,
        access: ProviderAccess,
        positions: PositionService,
        store: LinkStore,
        single_flight: SingleFlight,
        clock: Clock,
    ) -> None:
        self._access = access
        self._positions = positions
        self._store = store
        self._single_flight = single_flight
        self._clock = clock

    def snaptrade_user_secret(self, *, register: bool = False) -> str | None:
        """The stored user secret; with ``register`` the person is registered first if needed."""
        secret = self._access.snaptrade_user_secret()
        if secret is not None or not register:
            return secret
        name = snaptrade_user_secret_name(self._access.user_email)
        # One registration across every process: a second would fail at SnapTrade.
        with self._single_flight.hold(f"snaptrade-register:{name}", "the SnapTrade registration"):
            secret = self._access.snaptrade_user_secret()
            if secret is not None:
                return secret
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
                f"unknown connection_type {str(connection_type)[:40]!r}: allowed values are "
                "read, trade",
                field="connection_type",
            )
        reconnect = checked_authorization_id(reconnect)
        secret = self.snaptrade_user_secret(register=True)
        assert secret is not None
        before = self._connections(secret)
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
            connections_before=before,
            status="open",
            created_at=self._clock(),
        )
        self._store.add_flow(flow)
        return flow

    def snaptrade_flow(self, flow_id: object) -> PortalFlow:
        flow = self._store.flow(flow_id)
        if flow.status != "open":
            raise NotFound(UNKNOWN_FLOW)
        return flow

    def finish_snaptrade_connection(self, flow_id: object) -> ConnectOutcome:
        """The person is back from the portal: say what changed, and fetch positions if it did."""
        flow = self.snaptrade_flow(flow_id)
        if not self._store.claim_return(flow.flow_id):
            raise NotFound(UNKNOWN_FLOW)  # another request took this return first
        secret = self._access.snaptrade_user_secret()
        if secret is None:
            return ConnectOutcome(False, "SnapTrade does not know you yet: nothing changed.")
        try:
            after = self._connections(secret)
        except BrokerageHubError as exc:
            return ConnectOutcome(
                False,
                f"Your SnapTrade connections could not be checked ({exc.message}); "
                "look at the connections page again shortly.",
            )
        change = _what_changed(flow, after)
        if change is None:
            return ConnectOutcome(
                False,
                "Nothing changed: no connection was added or repaired (the portal was left "
                "before finishing). Connect again to try once more.",
            )
        try:
            self._positions.refresh_provider_positions("snaptrade")
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            return ConnectOutcome(
                True,
                f"{change}, but fetching positions failed ({message}). A new connection can "
                "take a few minutes to sync: refresh SnapTrade shortly.",
            )
        return ConnectOutcome(True, f"{change}; positions are up to date.")

    def _connections(self, secret: str) -> dict[str, dict[str, Any]]:
        return {
            row["authorization_id"]: {
                "brokerage": row["brokerage_name"],
                "type": row["connection_type"],
                "disabled": row["disabled"],
            }
            for row in list_snaptrade_connections(
                self._access.user_email, self._access.snaptrade_client(), user_secret=secret
            )
        }


def _what_changed(flow: PortalFlow, after: dict[str, dict[str, Any]]) -> str | None:
    """In words, what the trip changed; None when it changed nothing."""
    before = flow.connections_before
    added = [after[key]["brokerage"] for key in after if key not in before]
    if added:
        return f"SnapTrade connected {', '.join(added)}"
    if flow.reconnect and flow.reconnect in after and flow.reconnect in before:
        old, new = before[flow.reconnect], after[flow.reconnect]
        if old["disabled"] and not new["disabled"]:
            return f"SnapTrade reconnected {new['brokerage']}"
        if old["type"] != new["type"]:
            return f"SnapTrade upgraded {new['brokerage']} to {new['type']} access"
    return None
