"""Every Plaid Item and SnapTrade connection of the user, with its state: the connections page.

Plaid Items are the access tokens in the secret store, with the state the last
refresh recorded (ok, needs re-login, ...). SnapTrade connections are listed
from SnapTrade itself (one ``/authorizations`` call), because only SnapTrade
knows about a connection made or disabled since our last refresh; what it says
about "disabled" is written back to the connection registry, so automatic
refreshes stop calling a disabled connection (calls on a broken connection can
get it disabled for good).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from services.errors import BrokerageHubError
from services.normalized import institution_display_name

if TYPE_CHECKING:
    from services.composition import Services


@dataclass(frozen=True)
class ConnectionRow:
    provider: str
    connection_id: str  # the institution slug of a Plaid Item, a SnapTrade authorization id
    institution: str
    status: str  # ok, login_required, disabled, error, removed, unchecked
    connection_type: str | None = None  # SnapTrade: read or trade
    last_synced_at: datetime | None = None
    detail: str | None = None

    @property
    def needs_repair(self) -> bool:
        return self.status in ("login_required", "disabled")


@dataclass
class ConnectionsOverview:
    plaid: list[ConnectionRow] = field(default_factory=list)
    snaptrade: list[ConnectionRow] = field(default_factory=list)
    snaptrade_registered: bool = False
    # Why a provider's list may be incomplete (it could not be asked just now).
    problems: dict[str, str] = field(default_factory=dict)


def connections_overview(services: Services, providers: tuple[str, ...]) -> ConnectionsOverview:
    overview = ConnectionsOverview()
    if "plaid" in providers:
        overview.plaid = _plaid_rows(services, overview)
    if "snaptrade" in providers:
        overview.snaptrade = _snaptrade_rows(services, overview)
    return overview


def _plaid_rows(services: Services, overview: ConnectionsOverview) -> list[ConnectionRow]:
    from plaid_loader import institution_slug_of, list_user_tokens

    email = services.user_email
    try:
        slugs = [
            institution_slug_of(name)
            for name in list_user_tokens(email, store=services.secret_store)
        ]
    except BrokerageHubError as exc:
        overview.problems["plaid"] = exc.message
        return []
    rows = []
    for slug in slugs:
        state = services.connections.get(email, "plaid", slug)
        rows.append(
            ConnectionRow(
                provider="plaid",
                connection_id=slug,
                institution=(state and state.institution_name) or institution_display_name(slug),
                status=state.status if state else "unchecked",
                last_synced_at=state.last_synced_at if state else None,
                detail=state.last_error if state else None,
            )
        )
    return rows


def _snaptrade_rows(services: Services, overview: ConnectionsOverview) -> list[ConnectionRow]:
    from snaptrade_loader import list_snaptrade_connections

    email = services.user_email
    known = {state.external_id: state for state in services.connections.list(email, "snaptrade")}
    try:
        secret = services.linking.snaptrade_user_secret()
        overview.snaptrade_registered = secret is not None
        listed = (
            list_snaptrade_connections(email, services.snaptrade_client(), user_secret=secret)
            if secret
            else []
        )
    except BrokerageHubError as exc:
        overview.problems["snaptrade"] = exc.message
        return [
            ConnectionRow(
                provider="snaptrade",
                connection_id=state.external_id,
                institution=state.institution_name or "SnapTrade connection",
                status=state.status,
                connection_type=state.connection_type,
                last_synced_at=state.last_synced_at,
                detail=state.last_error,
            )
            for state in known.values()
        ]
    rows = []
    for connection in listed:
        auth_id = connection["authorization_id"]
        state = known.get(auth_id)
        status = _reconciled_status(services, connection, state)
        rows.append(
            ConnectionRow(
                provider="snaptrade",
                connection_id=auth_id,
                institution=connection["brokerage_name"],
                status=status,
                connection_type=connection.get("connection_type"),
                last_synced_at=state.last_synced_at if state else None,
                detail=(
                    f"disabled since {connection['disabled_date']}"
                    if status == "disabled" and connection.get("disabled_date")
                    else (state.last_error if state and status != "ok" else None)
                ),
            )
        )
    return rows


def _reconciled_status(services: Services, connection: dict, state: object) -> str:
    """SnapTrade's word on disabled/enabled wins over our last recorded state."""
    recorded = getattr(state, "status", None)
    if connection.get("disabled"):
        if recorded != "disabled":
            services.connections.record(
                services.user_email,
                "snaptrade",
                connection["authorization_id"],
                status="disabled",
                institution_name=connection["brokerage_name"],
                connection_type=connection.get("connection_type"),
                error="SnapTrade reports this connection as disabled",
            )
        return "disabled"
    if recorded == "disabled":
        # Reconnected since: let automatic refreshes use it again.
        services.connections.record(
            services.user_email,
            "snaptrade",
            connection["authorization_id"],
            status="ok",
            institution_name=connection["brokerage_name"],
            connection_type=connection.get("connection_type"),
        )
        return "ok"
    return recorded or "ok"
