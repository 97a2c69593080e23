"""What each verified event changes: cheap state only (due marks, connection states, a
finished link). An event about a connection sent before one already applied changes
nothing (``older``): out-of-order deliveries never move a state backwards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from services.connections import ConnectionRegistry
from services.models import ActivitySync, PositionRow, PositionSnapshot, User
from services.webhooks.freshness import EVERY_SOURCE, FreshnessStore
from services.webhooks.log import newer_applied

PLAID_CONNECTION_STATUS = {
    "ERROR": ("login_required", "Plaid reports the Item needs the person to log in again"),
    "PENDING_EXPIRATION": ("ok", "Plaid reports the Item's consent expires soon"),
    "PENDING_DISCONNECT": ("ok", "Plaid reports the Item will be disconnected soon"),
    "USER_PERMISSION_REVOKED": ("login_required", "the person revoked access at the bank"),
    "LOGIN_REPAIRED": ("ok", None),
}
SNAPTRADE_CONNECTION_STATUS = {
    "CONNECTION_BROKEN": ("disabled", "SnapTrade reports the connection broken"),
    "CONNECTION_FIXED": ("ok", None),
    "CONNECTION_DELETED": ("removed", "the connection was deleted at SnapTrade"),
    "CONNECTION_ADDED": ("ok", None),
}
ACTIVITY_EVENTS = (
    "ACCOUNT_TRANSACTIONS_INITIAL_UPDATE",
    "ACCOUNT_TRANSACTIONS_UPDATED",
)


@dataclass
class EventEffects:
    """The collaborators an event may touch."""

    engine: Engine
    connections: ConnectionRegistry
    freshness: FreshnessStore
    # (link_token, public tokens): a Hosted Link session finished.
    link_finished: Callable[[str, list[str]], None]


@dataclass
class Effect:
    family: str
    subject: str | None
    user_id: int | None
    apply: Callable[[datetime], str]


def _user_id(engine: Engine, email: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(User.id).where(User.email == email)).scalar_one_or_none()


def _ignored(family: str, subject: str | None = None, user_id: int | None = None) -> Effect:
    return Effect(family, subject, user_id, lambda sent_at: "ignored")


def _unless_older(
    effects: EventEffects,
    provider: str,
    subject: str,
    family: str,
    change: Callable[[datetime], None],
) -> Callable[[datetime], str]:
    def apply(sent_at: datetime) -> str:
        with effects.engine.connect() as conn:
            if newer_applied(conn, provider, subject, family, sent_at):
                return "older"
        change(sent_at)
        return "applied"

    return apply


def _mark(
    effects: EventEffects, user_id: int, provider: str, source: str, *, due: bool
) -> Callable[[datetime], str]:
    def apply(sent_at: datetime) -> str:
        with effects.engine.begin() as conn:
            effects.freshness.mark(conn, user_id, provider, source, sent_at=sent_at, due=due)
        return "applied"

    return apply


def _activity_due(
    effects: EventEffects, user_id: int, provider: str, source: str
) -> Callable[[datetime], str]:
    def apply(sent_at: datetime) -> str:
        with effects.engine.begin() as conn:
            conn.execute(
                update(ActivitySync)
                .where(
                    ActivitySync.user_id == user_id,
                    ActivitySync.provider == provider,
                    ActivitySync.source == source,
                    ActivitySync.due_since.is_(None),
                )
                .values(due_since=sent_at)
            )
            effects.freshness.mark(conn, user_id, provider, source, sent_at=sent_at, due=False)
        return "applied"

    return apply


def plaid_effects(payload: dict[str, Any], effects: EventEffects) -> Effect:
    kind, code = str(payload.get("webhook_type")), str(payload.get("webhook_code"))
    if kind == "LINK" and code == "SESSION_FINISHED":
        token = str(payload.get("link_token") or "")
        tokens = [t for t in payload.get("public_tokens") or [] if isinstance(t, str)]
        ok = str(payload.get("status", "")).upper() == "SUCCESS"

        def finish(sent_at: datetime) -> str:
            effects.link_finished(token, tokens if ok else [])
            return "applied"

        return Effect("link", str(payload.get("link_session_id") or "")[:100] or None, None, finish)
    item_id = str(payload.get("item_id") or "")
    owner = effects.connections.owner_of_item(item_id) if item_id else None
    if owner is None:
        return _ignored("unmatched", item_id or None)
    email, slug = owner
    user_id = _user_id(effects.engine, email)
    if user_id is None:
        return _ignored("unmatched", item_id)
    if kind == "HOLDINGS" and code == "DEFAULT_UPDATE":
        return Effect(
            "holdings", item_id, user_id, _mark(effects, user_id, "plaid", slug, due=True)
        )
    if kind == "INVESTMENTS_TRANSACTIONS":
        return Effect("activity", item_id, user_id, _activity_due(effects, user_id, "plaid", slug))
    if kind == "ITEM" and code in PLAID_CONNECTION_STATUS:
        status, note = PLAID_CONNECTION_STATUS[code]
        error: dict[str, Any] = payload["error"] if isinstance(payload.get("error"), dict) else {}
        if code == "ERROR" and error.get("error_code") != "ITEM_LOGIN_REQUIRED":
            status, note = "error", f"Plaid reports {error.get('error_code') or 'an error'}"
        if code == "PENDING_EXPIRATION" and payload.get("consent_expiration_time"):
            note = f"{note} ({payload['consent_expiration_time']})"

        def change(sent_at: datetime) -> None:
            effects.connections.record(email, "plaid", slug, status=status, error=note)
            with effects.engine.begin() as conn:
                effects.freshness.mark(conn, user_id, "plaid", slug, sent_at=sent_at, due=False)

        return Effect(
            "connection",
            item_id,
            user_id,
            _unless_older(effects, "plaid", item_id, "connection", change),
        )
    return Effect("other", item_id, user_id, _mark(effects, user_id, "plaid", slug, due=False))


def snaptrade_effects(payload: dict[str, Any], effects: EventEffects) -> Effect:
    event = str(payload.get("eventType") or "")
    user_id = _user_id(effects.engine, str(payload.get("userId") or ""))
    account = str(payload.get("accountId") or "") or None
    authorization = str(payload.get("brokerageAuthorizationId") or "") or None
    if user_id is None:
        return _ignored("unmatched", account or authorization)
    email = str(payload["userId"])
    if event == "ACCOUNT_HOLDINGS_UPDATED" and account:
        details: dict[str, Any] = (
            payload["details"] if isinstance(payload.get("details"), dict) else {}
        )
        # Per part {"success": bool, "error": ...}, as SnapTrade documents it.
        worked = all(
            (part.get("success") is not False) if isinstance(part, dict) else part is not False
            for part in details.values()
        )
        return Effect(
            "holdings", account, user_id, _mark(effects, user_id, "snaptrade", account, due=worked)
        )
    if event in ACTIVITY_EVENTS and account:
        return Effect(
            "activity", account, user_id, _activity_due(effects, user_id, "snaptrade", account)
        )
    if event == "NEW_ACCOUNT_AVAILABLE":
        return Effect(
            "holdings",
            account or authorization,
            user_id,
            _mark(effects, user_id, "snaptrade", EVERY_SOURCE, due=True),
        )
    if event == "ACCOUNT_REMOVED" and account:

        def drop(sent_at: datetime) -> None:
            # Its cached positions go; its activity history and the trade audit stay. The
            # generation moves with them, so no process serves a view that still has them.
            with effects.engine.begin() as conn:
                conn.execute(
                    delete(PositionRow).where(
                        PositionRow.user_id == user_id,
                        PositionRow.provider == "snaptrade",
                        PositionRow.account_id == account,
                    )
                )
                conn.execute(
                    update(PositionSnapshot)
                    .where(
                        PositionSnapshot.user_id == user_id,
                        PositionSnapshot.provider == "snaptrade",
                    )
                    .values(generation=PositionSnapshot.generation + 1)
                )

        return Effect(
            "connection",
            account,
            user_id,
            _unless_older(effects, "snaptrade", account, "connection", drop),
        )
    if event in SNAPTRADE_CONNECTION_STATUS and authorization:
        status, note = SNAPTRADE_CONNECTION_STATUS[event]

        def change(sent_at: datetime) -> None:
            effects.connections.record(email, "snaptrade", authorization, status=status, error=note)

        return Effect(
            "connection",
            authorization,
            user_id,
            _unless_older(effects, "snaptrade", authorization, "connection", change),
        )
    if event == "USER_DELETED":

        def removed(sent_at: datetime) -> None:
            for state in effects.connections.list(email, "snaptrade"):
                effects.connections.record(
                    email,
                    "snaptrade",
                    state.external_id,
                    status="removed",
                    error="the SnapTrade user was deleted",
                )

        return Effect(
            "connection",
            email[:100],
            user_id,
            _unless_older(effects, "snaptrade", email[:100], "connection", removed),
        )
    return _ignored("other", account or authorization, user_id)
