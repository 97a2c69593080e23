"""The state of every connection, checked without disturbing it, and recorded.

Passive by default: SnapTrade accounts, each authorization's detail and one
balance read; Plaid ``/item/get`` per Item. ``probe_trading=True`` adds one
symbol search per SnapTrade trade connection (still read-only at the broker).
What a check sees is written to the connection registry, so automatic refreshes
skip a connection that needs repair and ``get_positions`` can say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import BrokerageHubError, InvalidInput, ProviderDisabled
from core.untrusted import quoted_name
from providers.plaid.health import check_plaid_connection_health
from providers.snaptrade.health import check_snaptrade_connection_health
from services.clock import Clock
from services.connections.provider_access import ProviderAccess
from services.connections.registry import ConnectionRegistry

log = logging.getLogger(__name__)

SUPPORT_USE_CASE = "Portfolio rebalancing via MCP tools"


class HealthService:
    def __init__(
        self,
        access: ProviderAccess,
        connections: ConnectionRegistry,
        clock: Clock,
        *,
        snaptrade_client_id: Callable[[], str],
        environments: Mapping[str, str] | None = None,
    ) -> None:
        self._access = access
        # Each provider's environment (the *_ENV settings); a disabled one is never asked.
        self.environments = dict(environments or {})
        self._connections = connections
        self._clock = clock
        # Only the support request needs it; read when it is written.
        self.snaptrade_client_id = snaptrade_client_id

    @property
    def user_email(self) -> str:
        return self._access.user_email

    # --- SnapTrade --------------------------------------------------------------------

    def snaptrade_rows(self, probe_trading: bool = False) -> list[dict[str, Any]]:
        """The adapter's health rows (raises when the accounts cannot be listed at all)."""
        self._refuse_if_disabled("snaptrade")
        secret = self._access.snaptrade_user_secret()
        if secret is None:
            return []  # no SnapTrade user registered: genuinely no connections
        rows = check_snaptrade_connection_health(
            self.user_email, self._access.snaptrade_client(), probe_trading, user_secret=secret
        )
        for row in rows:
            self._record_snaptrade(row)
        return rows

    def _record_snaptrade(self, row: dict[str, Any]) -> None:
        if row["disabled"]:
            status = "disabled"
            error = row["trading_error"] or (
                f"disabled at SnapTrade since {row['disabled_date']}: reconnect it"
            )
        elif not row["data_ok"]:
            status, error = "error", row["trading_error"]
        else:
            status, error = "ok", None
        try:
            self._connections.record(
                self.user_email,
                "snaptrade",
                row["authorization_id"],
                status=status,
                institution_name=row["brokerage_name"],
                connection_type=row["connection_type"],
                error=error,
            )
        except Exception:  # the report matters more than remembering it
            log.warning("could not record SnapTrade connection state", exc_info=True)

    # --- Plaid ------------------------------------------------------------------------

    def plaid_rows(self) -> list[dict[str, Any]]:
        self._refuse_if_disabled("plaid")
        if not self._access.plaid_token_names():
            return []  # no Item linked: no client is made, no call is sent
        rows = check_plaid_connection_health(
            self.user_email,
            self._access.plaid_client(),
            store=self._access.secret_store,
            now=self._clock(),
        )
        for row in rows:
            try:
                self._connections.record(
                    self.user_email,
                    "plaid",
                    row["institution_slug"],
                    status=row["status"],
                    institution_name=row["institution_name"],
                    institution_slug=row["institution_slug"],
                    error=row["error"],
                )
            except Exception:
                log.warning("could not record Plaid connection state", exc_info=True)
        return rows

    # --- together ---------------------------------------------------------------------

    def check_connections(self, probe_trading: bool = False) -> dict[str, Any]:
        """Every connection of both providers, with what needs the person's attention.

        A provider that cannot be checked at all reports its error (it does not
        look like "no connections") and does not hide the other provider; a disabled
        one is not asked and reports ``status: "disabled"``, needing no attention.
        """
        if not isinstance(probe_trading, bool):
            raise InvalidInput("probe_trading must be true or false", field="probe_trading")
        report: dict[str, Any] = {
            "checked_at": self._clock().isoformat(),
            "probe_trading": probe_trading,
        }
        attention: list[str] = []
        if self.is_disabled("snaptrade"):
            report["snaptrade"] = self._disabled_section("snaptrade")
        else:
            try:
                snaptrade = [_snaptrade_view(r) for r in self.snaptrade_rows(probe_trading)]
                report["snaptrade"] = self._section("snaptrade", snaptrade)
                attention += [
                    f"{quoted_name(r['brokerage_name'])} (SnapTrade): {r['action']}"
                    for r in snaptrade
                    if r["needs_attention"]
                ]
            except BrokerageHubError as exc:
                report["snaptrade"] = self._section("snaptrade", [], error=exc.message)
                attention.append(f"SnapTrade could not be checked: {exc.message}")
        if self.is_disabled("plaid"):
            report["plaid"] = self._disabled_section("plaid")
        else:
            try:
                plaid = [_plaid_view(r) for r in self.plaid_rows()]
                report["plaid"] = self._section("plaid", plaid)
                attention += [
                    f"{quoted_name(r['institution_name'])} (Plaid): {r['action']}"
                    for r in plaid
                    if r["needs_attention"]
                ]
            except BrokerageHubError as exc:
                report["plaid"] = self._section("plaid", [], error=exc.message)
                attention.append(f"Plaid could not be checked: {exc.message}")
        report["needs_attention"] = attention
        return report

    # --- disabled providers -----------------------------------------------------------

    def is_disabled(self, provider: str) -> bool:
        return self.environments.get(provider) == "disabled"

    def _refuse_if_disabled(self, provider: str) -> None:
        if self.is_disabled(provider):
            raise ProviderDisabled(provider)

    def _section(
        self, provider: str, connections: list[dict[str, Any]], *, error: str | None = None
    ) -> dict[str, Any]:
        """One provider's part of the report: status ok or error, and its connections."""
        return {
            "ok": error is None,
            "status": "ok" if error is None else "error",
            "environment": self.environments.get(provider),
            "error": error,
            "connections": connections,
        }

    def _disabled_section(self, provider: str) -> dict[str, Any]:
        """A disabled provider is not checked, and nothing about it needs attention."""
        return {
            "ok": None,
            "status": "disabled",
            "environment": "disabled",
            "error": None,
            "connections": [],
            "note": ProviderDisabled(provider).message,
        }

    # --- the 1020 support request -----------------------------------------------------

    def snaptrade_support_request(self, rows: list[dict[str, Any]] | None = None) -> str:
        """The request to SnapTrade support for app-level trading (error 1020), filled in.

        From the rows of a trading probe already made (the connections page's probe), or
        else probes trading (one symbol search per trade connection) to find the affected
        authorizations. Never contains the consumer key or a user secret.
        """
        if rows is None:
            rows = self.snaptrade_rows(probe_trading=True)
        affected = trading_not_permitted(rows)
        if not affected:
            return (
                "No SnapTrade connection answers HTTP 403 code 1020 right now "
                f"({len(rows)} connection(s) checked): no support request is needed."
            )
        observed = affected[0]["trading_error"]
        return "\n".join(
            [
                "Subject: Enable trading permissions for app",
                f"Client ID: {self.snaptrade_client_id()}",
                "Affected authorizations: " + ", ".join(r["authorization_id"] for r in affected),
                "Brokerages: "
                + ", ".join(sorted({quoted_name(r["brokerage_name"]) for r in affected})),
                "Error: HTTP 403, code 1020 on get_order_impact / place_order endpoints",
                f"Observed: {observed} (checked {self._clock().isoformat()})",
                f"Use case: {SUPPORT_USE_CASE}",
            ]
        )


def trading_not_permitted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The probed rows whose trading SnapTrade refuses for the whole app (error 1020)."""
    return [
        r for r in rows if r.get("trading_ok") is False and "1020" in (r.get("trading_error") or "")
    ]


def _snaptrade_view(row: dict[str, Any]) -> dict[str, Any]:
    """The loader's row plus what it means for the person.

    ``action`` says it in words for an assistant or a terminal; ``remedy`` names the fix as
    data (``reconnect``, ``snaptrade_support_request``; None when there is none to offer)
    so the web app can put its button there instead.
    """
    auth = row["authorization_id"]
    action: str | None = None
    remedy: str | None = None
    if row["disabled"]:
        remedy = "reconnect"
        action = (
            "the connection is disabled: reconnect it through the SnapTrade connection portal "
            f"(reconnect='{auth}')"
        )
    elif not row["data_ok"]:
        action = f"the connection could not be read: {row['trading_error']}"
    elif row["trading_ok"] is False:
        action = str(row["trading_error"])
        if trading_not_permitted([row]):
            remedy = "snaptrade_support_request"
            action += (
                " (ask SnapTrade support to enable trading for this app: "
                "`flask --app app snaptrade-support-request` prints the request, and the web "
                "app's Connections page shows it after a trading probe)"
            )
    status = "disabled" if row["disabled"] else "ok" if row["data_ok"] else "error"
    note = None
    if row["connection_type"] == "read":
        note = (
            "read-only connection: to trade through it, reconnect it with connection type "
            f"'trade' (reconnect='{auth}')"
        )
    return {
        **row,
        "status": status,
        "needs_attention": action is not None,
        "action": action,
        "remedy": remedy,
        "note": note,
    }


def _plaid_view(row: dict[str, Any]) -> dict[str, Any]:
    """The loader's row plus what it means: ``action`` in words, ``remedy`` as data
    (``update_mode``, ``link_again``; None when there is none to offer)."""
    action: str | None = None
    remedy: str | None = None
    if row["needs_relogin"]:
        remedy = "update_mode"
        action = "the person must log in again through Plaid Link (update mode)"
    elif row["status"] == "removed":
        remedy = "link_again"
        action = "the Item no longer exists at Plaid: link the institution again"
    elif row["error"]:
        action = f"the Item could not be checked: {row['error']}"
    elif row["consent_expiring"]:
        remedy = "update_mode"
        action = (
            f"consent expires at {row['consent_expiration_time']}: renew it through Plaid Link "
            "(update mode) before then"
        )
    return {**row, "needs_attention": action is not None, "action": action, "remedy": remedy}
