"""SnapTrade's webhooks (the API-key schema of SnapTrade's docs/webhooks.md).

SnapTrade sends every webhook of an app to the one listener URL set in its dashboard: here
``start_emulator(snaptrade_webhook_url=...)`` or the ``set_snaptrade_webhook_url`` control.
Without one nothing is sent. The URL belongs to this emulator (memory), like its faults.

Every payload has ``webhookId`` (new per webhook; a duplicated delivery repeats it),
``clientId``, ``eventTimestamp`` (the emulator clock, ISO 8601 UTC), ``userId`` and
``eventType``; connection events add ``brokerageAuthorizationId`` and ``brokerageId``,
account events ``accountId`` as well, and ACCOUNT_HOLDINGS_UPDATED ``details``: per part
of the update whether it succeeded, ``{"positions": {"success": true, "error": null}, ...}``
as SnapTrade documents it. The deprecated ``webhookSecret`` is not sent.
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox import demo
from sandbox.data import SNAPTRADE_BROKERAGES
from sandbox.state import StateStore
from sandbox.webhooks.outbox import is_webhook_url, outbox_for
from sandbox.webhooks.signing import sign_snaptrade

CONNECTION_EVENTS = frozenset(
    {"CONNECTION_ADDED", "CONNECTION_BROKEN", "CONNECTION_FIXED", "CONNECTION_DELETED"}
)
ACCOUNT_EVENTS = frozenset(
    {
        "ACCOUNT_HOLDINGS_UPDATED",
        "ACCOUNT_TRANSACTIONS_UPDATED",
        "ACCOUNT_TRANSACTIONS_INITIAL_UPDATE",
        "ACCOUNT_REMOVED",
        "NEW_ACCOUNT_AVAILABLE",
    }
)
USER_EVENTS = frozenset({"USER_REGISTERED", "USER_DELETED"})
EVENTS = CONNECTION_EVENTS | ACCOUNT_EVENTS | USER_EVENTS
HOLDINGS_PARTS = ("total_value", "positions", "balances", "orders")


def holdings_details(failed: tuple[str, ...] = ()) -> dict[str, Any]:
    """ACCOUNT_HOLDINGS_UPDATED's ``details``: every part succeeded but those ``failed``."""
    return {
        part: {
            "success": part not in failed,
            "error": "emulated failure" if part in failed else None,
        }
        for part in HOLDINGS_PARTS
    }


class SnapTradeWebhooks:
    """Builds SnapTrade's webhook payloads and queues them for the dashboard's URL."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.outbox = outbox_for(store)
        self.url: str | None = None

    def set_url(self, url: str | None) -> None:
        if url is not None and not is_webhook_url(url):
            raise ValueError(f"a webhook URL is an http or https URL (or None), not {url!r}")
        self.url = url

    def send(self, event_type: str, user_id: str, now: float, **fields: Any) -> bool:
        """Queue one webhook (nothing without a URL); signed when it is sent."""
        url = self.url
        if not url:
            return False
        payload = {
            "webhookId": str(uuid.uuid4()),
            "clientId": demo.SNAPTRADE_CLIENT_ID,
            "userId": user_id,
            "eventType": event_type,
            **fields,
        }

        def signed(faults: frozenset[str]) -> tuple[dict[str, str], bytes]:
            return sign_snaptrade(payload, now, faults)

        self.outbox.post("snaptrade", url, now, signed)
        return True

    def connection_event(self, auth: dict[str, Any], event_type: str, now: float) -> bool:
        return self.send(event_type, auth["user_id"], now, **_connection_fields(auth))

    def account_event(
        self,
        auth: dict[str, Any],
        account_key: str,
        event_type: str,
        now: float,
        details: dict[str, Any] | None = None,
    ) -> bool:
        fields = {"accountId": auth["account_ids"][account_key], **_connection_fields(auth)}
        if details is not None:
            fields["details"] = details
        return self.send(event_type, auth["user_id"], now, **fields)

    def _connections_holding(self, account_key: str) -> list[dict[str, Any]]:
        authorizations = self.store.read()["snaptrade"]["authorizations"].values()
        return [a for a in authorizations if account_key in a["account_ids"]]

    def holdings_changed(self, account_key: str, now: float) -> None:
        """ACCOUNT_HOLDINGS_UPDATED for the account on every connection serving it."""
        if self.url:
            for auth in self._connections_holding(account_key):
                self.account_event(
                    auth, account_key, "ACCOUNT_HOLDINGS_UPDATED", now, holdings_details()
                )

    def transactions_changed(self, account_key: str, now: float) -> None:
        """ACCOUNT_TRANSACTIONS_UPDATED for the account on every connection serving it."""
        if self.url:
            for auth in self._connections_holding(account_key):
                self.account_event(auth, account_key, "ACCOUNT_TRANSACTIONS_UPDATED", now)

    def fire(
        self,
        event_type: str,
        now: float,
        *,
        account_key: str | None = None,
        connection: str | None = None,
        user_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Send ``event_type`` as SnapTrade would; returns how many webhooks were queued.

        ``connection`` is an authorization id or a brokerage slug ("interactive-brokers");
        ``account_key`` a demo account ("ibkr-individual"). An account event needs the
        account (the connection is found from it), a connection event the connection or an
        account of it, a user event neither (``user_id`` defaults to the demo user). Nothing
        in the state changes: this is the notification alone.
        """
        if event_type not in EVENTS:
            raise ValueError(f"unknown SnapTrade event {event_type!r}; known: {sorted(EVENTS)}")
        if not self.url:
            raise ValueError("no SnapTrade webhook URL is set (set_snaptrade_webhook_url)")
        if event_type in USER_EVENTS:
            return int(self.send(event_type, user_id or demo.SNAPTRADE_USER_ID, now))
        if event_type in ACCOUNT_EVENTS and account_key is None:
            raise ValueError(f"{event_type} is about an account: give account_key")
        if account_key is None and connection is None:
            raise ValueError(f"{event_type} is about a connection: give connection or account_key")
        sent = 0
        for auth in self._matching(account_key, connection, user_id):
            if event_type in CONNECTION_EVENTS:
                sent += self.connection_event(auth, event_type, now)
            else:
                assert account_key is not None
                if details is None and event_type == "ACCOUNT_HOLDINGS_UPDATED":
                    details = holdings_details()
                sent += self.account_event(auth, account_key, event_type, now, details)
        return sent

    def _matching(
        self, account_key: str | None, connection: str | None, user_id: str | None
    ) -> list[dict[str, Any]]:
        found = [
            auth
            for auth in self.store.read()["snaptrade"]["authorizations"].values()
            if (connection is None or connection in (auth["id"], auth["brokerage"]))
            and (account_key is None or account_key in auth["account_ids"])
            and (user_id is None or auth["user_id"] == user_id)
        ]
        if not found:
            raise ValueError(
                f"no SnapTrade connection matches connection={connection!r}, "
                f"account_key={account_key!r}, user_id={user_id!r}"
            )
        return found


def _connection_fields(auth: dict[str, Any]) -> dict[str, str]:
    institution = SNAPTRADE_BROKERAGES[auth["brokerage"]]
    return {
        "brokerageAuthorizationId": auth["id"],
        "brokerageId": str(institution.snaptrade_brokerage_id),
    }
