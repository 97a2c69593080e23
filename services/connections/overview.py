"""Every Plaid Item and SnapTrade connection of the user, with its health: the connections page.

The health comes from the connection check (``services.health``:
``check_plaid_connection_health`` / ``check_snaptrade_connection_health``), passive
unless the person pressed the trading probe button, which also records what it sees in
the connection registry. When a provider cannot be checked right now, its connections
are shown from the registry (the state the last refresh or check recorded), with the
reason.

Every ``action`` here is said for a person in a browser: what to do on the page (its
buttons), or why it cannot be done there. When a probe finds SnapTrade error 1020, the
support request to send SnapTrade comes filled in (``support_request``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.normalized import institution_display_name
from services.connections.health import HealthService, trading_not_permitted
from services.connections.provider_access import ProviderAccess
from services.connections.registry import ConnectionRegistry, ConnectionState


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
    remedy: str | None = None  # the fix as data: reconnect, update_mode, snaptrade_support_request
    trading_ok: bool | None = None  # SnapTrade, after a trading probe only
    trading_error: str | None = None

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
    probed: bool = False  # the SnapTrade trade connections were probed for trading
    probe_summary: str | None = None  # what the probe found, in one sentence
    probe_ok: bool = False  # it ran and every trade connection may trade
    support_request: str | None = None  # for SnapTrade support, when a probe found 1020

    @property
    def can_probe_trading(self) -> bool:
        """A trading probe would ask something: SnapTrade is on and has a trade connection."""
        return "snaptrade" not in self.disabled and any(
            row.connection_type == "trade" and row.status != "disabled" for row in self.snaptrade
        )


def connections_overview(
    health: HealthService,
    connections: ConnectionRegistry,
    access: ProviderAccess,
    *,
    providers: tuple[str, ...],
    probe_trading: bool = False,
) -> ConnectionsOverview:
    """Every connection of ``providers`` as checked now, or as last recorded if it cannot be.

    ``probe_trading``: also one symbol search per SnapTrade trade connection (a disabled
    provider is still never asked), with the support request filled in when SnapTrade
    answers 1020.
    """
    report = health.check_connections(probe_trading=probe_trading)
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
    if probe_trading and "snaptrade" in providers:
        _add_probe(overview, health, report.get("snaptrade") or {})
    return overview


def _add_probe(
    overview: ConnectionsOverview, health: HealthService, section: dict[str, Any]
) -> None:
    """What the trading probe found, and the support request when SnapTrade answered 1020."""
    overview.probed = True
    if section.get("status") == "disabled":
        overview.probe_summary = f"{section.get('note')}: nothing was probed."
        return
    if not section.get("ok"):
        overview.probe_summary = (
            f"SnapTrade could not be asked just now ({section.get('error')}): trading was not "
            "probed. Try again in a moment."
        )
        return
    probed = [r for r in section.get("connections") or [] if r.get("trading_ok") is not None]
    if not probed:
        overview.probe_summary = (
            "No SnapTrade trade connection could be probed: connect one with read and trade "
            "access (or upgrade a read-only one) first."
        )
        return
    works = [r["brokerage_name"] for r in probed if r["trading_ok"]]
    refused = [r["brokerage_name"] for r in probed if not r["trading_ok"]]
    summary = f"Trading probe: {len(probed)} trade connection(s) checked, no order placed."
    if works:
        summary += f" Trading works for {', '.join(works)}."
    if refused:
        summary += f" Trading does not work for {', '.join(refused)}: see below."
    overview.probe_summary = summary
    overview.probe_ok = not refused
    if trading_not_permitted(probed):
        overview.support_request = health.snaptrade_support_request(probed)


def _plaid_row(row: dict[str, Any], state: ConnectionState | None) -> ConnectionRow:
    slug = row["institution_slug"]
    note = None
    if row.get("consent_expiration_time") and not row.get("consent_expiring"):
        note = f"consent expires {row['consent_expiration_time'][:10]}"
    remedy = row.get("remedy")
    action = row.get("action")
    if row.get("needs_relogin"):
        action = "Plaid needs you to log in again: use the Log in again button below."
    elif remedy == "update_mode":
        action = (
            f"consent expires at {row.get('consent_expiration_time')}: renew it with the "
            "Update login button below before then."
        )
    elif remedy == "link_again":
        action = (
            "the Item no longer exists at Plaid: link the institution again with the Link "
            "button below."
        )
    return ConnectionRow(
        provider="plaid",
        connection_id=slug,
        institution=row.get("institution_name") or institution_display_name(slug),
        status=row["status"],
        last_synced_at=state.last_synced_at if state else None,
        action=action,
        note=note,
        remedy=remedy,
    )


def _snaptrade_row(row: dict[str, Any], state: ConnectionState | None) -> ConnectionRow:
    note = None
    if row["connection_type"] == "read" and not row["disabled"]:
        note = "read-only: upgrade it to trade through it"
    remedy = row.get("remedy")
    if row["disabled"]:
        since = f" since {row['disabled_date']}" if row.get("disabled_date") else ""
        action: str | None = f"disabled at SnapTrade{since}: reconnect it with the button below"
    elif remedy == "snaptrade_support_request":
        action = (
            f"{row['trading_error']} Only SnapTrade can switch trading on for this app: send "
            "them the support request below."
        )
    elif row.get("trading_ok") is False:
        action = str(row["trading_error"])
    else:
        action = row.get("action")
    return ConnectionRow(
        provider="snaptrade",
        connection_id=row["authorization_id"],
        institution=row["brokerage_name"],
        status=row["status"],
        connection_type=row["connection_type"],
        last_synced_at=state.last_synced_at if state else None,
        action=action,
        note=note,
        remedy=remedy,
        trading_ok=row.get("trading_ok"),
        trading_error=row.get("trading_error"),
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
