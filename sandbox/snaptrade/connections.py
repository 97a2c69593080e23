"""How SnapTrade connections are made and changed: logging a user in to the
connection portal, the portal page a person finishes, and the switches that
disable a connection or withdraw its trading permission.

With a webhook URL set (``sandbox.snaptrade.webhooks``), a new connection sends
CONNECTION_ADDED, a connection disabled CONNECTION_BROKEN and one enabled again (the
switch, or a reconnect through the portal) CONNECTION_FIXED.
"""

from __future__ import annotations

import html
import uuid
from typing import Any

from sandbox.data import SNAPTRADE_BROKERAGES
from sandbox.routing import ApiRequest, ApiResponse, html_page, iso_timestamp
from sandbox.snaptrade.access import authorization_or_error
from sandbox.snaptrade.common import PREFIX, error
from sandbox.snaptrade.webhooks import SnapTradeWebhooks
from sandbox.state import StateStore


class ConnectionEndpoints:
    """The portal login operation, the portal page and the connection switches."""

    def __init__(self, store: StateStore, webhooks: SnapTradeWebhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    def login(self, request: ApiRequest) -> ApiResponse:
        body = request.json_object()
        user_id = request.args["userId"]
        reconnect = body.get("reconnect")
        session_id = str(uuid.uuid4())
        with self.store.transaction() as state:
            if reconnect:
                auth = state["snaptrade"]["authorizations"].get(reconnect)
                if auth is None or auth["user_id"] != user_id:
                    return error(404, "0000", f"Connection {reconnect} not found")
            state["snaptrade"]["portal_sessions"][session_id] = {
                "user_id": user_id,
                "broker": body.get("broker"),
                "connection_type": body.get("connectionType") or "read",
                "reconnect": reconnect,
                "custom_redirect": body.get("customRedirect"),
                "created_at": request.now,
            }
        return ApiResponse(
            200,
            {
                "redirectURI": f"{request.base_url}{PREFIX}/portal/{session_id}",
                "sessionId": session_id,
            },
        )

    def complete_connection(self, session_id: str, brokerage_slug: str, now: float) -> str:
        """Act as the person finishing the connection portal; returns the authorization id.

        With ``reconnect`` the existing connection is re-enabled and takes the
        session's connection type (how a read connection becomes a trade one);
        otherwise a new connection with new account ids is made.
        """
        if brokerage_slug not in SNAPTRADE_BROKERAGES:
            raise ValueError(f"no SnapTrade brokerage {brokerage_slug!r}")
        with self.store.transaction() as state:
            session = state["snaptrade"]["portal_sessions"].pop(session_id, None)
            if session is None:
                raise ValueError(f"unknown or used portal session {session_id!r}")
            connection_type = "read" if session["connection_type"] == "read" else "trade"
            if session["reconnect"]:
                auth = state["snaptrade"]["authorizations"][session["reconnect"]]
                event = "CONNECTION_FIXED" if auth["disabled"] else None
                auth.update(type=connection_type, disabled=False, disabled_date=None)
            else:
                auth = _new_connection(
                    state, session["user_id"], brokerage_slug, connection_type, now
                )
                event = "CONNECTION_ADDED"
        if event is not None:
            self.webhooks.connection_event(auth, event, now)
        return str(auth["id"])

    def set_connection_disabled(self, authorization_id: str, disabled: bool, now: float) -> None:
        with self.store.transaction() as state:
            auth = authorization_or_error(state, authorization_id)
            changed = auth["disabled"] != disabled
            auth["disabled"] = disabled
            auth["disabled_date"] = iso_timestamp(now) if disabled else None
        if changed:
            event = "CONNECTION_BROKEN" if disabled else "CONNECTION_FIXED"
            self.webhooks.connection_event(auth, event, now)

    def set_trading_permission(self, authorization_id: str, allowed: bool) -> None:
        with self.store.transaction() as state:
            authorization_or_error(state, authorization_id)["trading_allowed"] = allowed

    def portal_page(self, request: ApiRequest) -> ApiResponse:
        session_id = request.path_params["sessionId"]
        session = self.store.read()["snaptrade"]["portal_sessions"].get(session_id)
        if session is None:
            return html_page(404, "Session expired", "<p>This connection link has expired.</p>")
        if request.method == "POST":
            slug = request.form.get("brokerage", "")
            if slug not in SNAPTRADE_BROKERAGES:
                return html_page(400, "Unknown brokerage", "<p>Pick a brokerage.</p>")
            self.complete_connection(session_id, slug, request.now)
            if session["custom_redirect"]:
                return ApiResponse(303, headers={"Location": session["custom_redirect"]}, raw=b"")
            return html_page(
                200, "Connected", "<p>Brokerage connected. You can close this tab.</p>"
            )
        choices = [
            i
            for i in SNAPTRADE_BROKERAGES.values()
            if not session["broker"] or i.slug.upper() == str(session["broker"]).upper()
        ]
        buttons = "".join(
            f"<button name='brokerage' value='{html.escape(i.slug)}'>{html.escape(i.name)}</button>"
            for i in choices
        )
        action = html.escape(f"{PREFIX}/portal/{session_id}")
        return html_page(
            200,
            "SnapTrade connection portal (emulator)",
            f"<h1>Connect a brokerage ({html.escape(session['connection_type'])})</h1>"
            f"<form method='post' action='{action}'>{buttons}</form>",
        )


def _new_connection(
    state: dict[str, Any], user_id: str, brokerage_slug: str, connection_type: str, now: float
) -> dict[str, Any]:
    """A new connection with new account ids, stored in ``state``."""
    auth_id = str(uuid.uuid4())
    institution = SNAPTRADE_BROKERAGES[brokerage_slug]
    auth = {
        "id": auth_id,
        "user_id": user_id,
        "brokerage": brokerage_slug,
        "type": connection_type,
        "created_date": iso_timestamp(now),
        "disabled": False,
        "disabled_date": None,
        "trading_allowed": True,
        "account_ids": {a.key: str(uuid.uuid4()) for a in institution.accounts},
    }
    state["snaptrade"]["authorizations"][auth_id] = auth
    return auth
