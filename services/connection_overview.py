"""Every Plaid Item and SnapTrade connection of the user, with its health: the connections page.

The health comes from the passive connection check (``services.health``:
``check_plaid_connection_health`` / ``check_snaptrade_connection_health``; no
trading probe), which also records what it sees in the connection registry.
When a provider cannot be checked right now, its connections are shown from
the registry (the state the last refresh or check recorded), with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.normalized import institution_display_name
from services.connections import ConnectionRegistry, ConnectionState
from services.health_service import HealthService
from services.provider_access import ProviderAccess


@dataclass(frozen=True)
class ConnectionRow:
    provider: str
    connection_id: str  # the institution slug of a Plaid Item, a SnapTrade authorization id
    institution: str
    status: str  # ok, login_required, disabled, error, removed, unchecked
    connection_type: str | None = None  # SnapTrade: read or trade
    last_synced_at: datetime | None = None
    action: str | None = None  # what the person should do, when something needs them
    note: str | None = None  # worth knowing, nothing to do

    @property
    def needs_repair(self) -> bool:
        return self.status in ("login_required", "disabled")


@dataclass
class ConnectionsOverview:
    plaid: list[ConnectionRow] = field(default_factory=list)
    snaptrade: list[ConnectionRow] = field(default_factory=list)
    snaptrade_registered: bool = False
    # Why a provider's connections are shown from the last recorded state.
    problems: dict[str, str] = field(default_factory=dict)
    # Disabled providers (``*_ENV=disabled``), in words: none of their connections is shown.
    disabled: dict[str, str] = field(default_factory=dict)


def connections_overview(
    health: HealthService,
    connections: ConnectionRegistry,
    access: ProviderAccess,
    *,
    providers: tuple[str, ...],
) -> ConnectionsOverview:
    """Every connection of ``providers`` as checked now, or as last recorded if it cannot be."""
    report = health.check_connections(probe_trading=False)
    recorded = {
        (state.provider, state.external_id): state for state in connections.list(access.user_email)
    }
    overview = ConnectionsOverview(snaptrade_registered=access.snaptrade_user_secret() is not None)
    for provider in providers:
        section = report.get(provider) or {}
        if section.get("status") == "disabled":
            overview.disabled[provider] = str(section.get("note"))
            rows = []
        elif not section.get("ok"):
            overview.problems[provider] = str(section.get("error"))
            rows = [_recorded_row(s) for (p, _), s in recorded.items() if p == provider]
        elif provider == "plaid":
            rows = [
                _plaid_row(r, recorded.get(("plaid", r["institution_slug"])))
                for r in section["connections"]
            ]
        else:
            rows = [
                _snaptrade_row(r, recorded.get(("snaptrade", r["authorization_id"])))
                for r in section["connections"]
            ]
        setattr(overview, provider, rows)
    return overview


def _plaid_row(row: dict[str, Any], state: ConnectionState | None) -> ConnectionRow:
    slug = row["institution_slug"]
    note = None
    if row.get("consent_expiration_time") and not row.get("consent_expiring"):
        note = f"consent expires {row['consent_expiration_time'][:10]}"
    return ConnectionRow(
        provider="plaid",
        connection_id=slug,
        institution=row.get("institution_name") or institution_display_name(slug),
        status=row["status"],
        last_synced_at=state.last_synced_at if state else None,
        action=row.get("action"),
        note=note,
    )


def _snaptrade_row(row: dict[str, Any], state: ConnectionState | None) -> ConnectionRow:
    note = None
    if row["connection_type"] == "read" and not row["disabled"]:
        note = "read-only: upgrade it to trade through it"
    return ConnectionRow(
        provider="snaptrade",
        connection_id=row["authorization_id"],
        institution=row["brokerage_name"],
        status=row["status"],
        connection_type=row["connection_type"],
        last_synced_at=state.last_synced_at if state else None,
        action=(
            f"disabled at SnapTrade since {row['disabled_date']}: reconnect it"
            if row["disabled"] and row.get("disabled_date")
            else "disabled at SnapTrade: reconnect it"
            if row["disabled"]
            else row.get("action")
        ),
        note=note,
    )


def _recorded_row(state: ConnectionState) -> ConnectionRow:
    return ConnectionRow(
        provider=state.provider,
        connection_id=state.external_id,
        institution=state.institution_name
        or (
            institution_display_name(state.external_id)
            if state.provider == "plaid"
            else "SnapTrade connection"
        ),
        status=state.status,
        connection_type=state.connection_type,
        last_synced_at=state.last_synced_at,
        action=state.last_error,
    )
