"""The stored webhook events: one row per verified delivery, a copy refused by its key."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.models import WebhookEvent

PAYLOAD_CHARS = 20_000
# Deduplication and replay checks look back minutes; a month of events is left for
# looking into what a provider sent.
KEEP_EVENTS_FOR = timedelta(days=30)


class Duplicate(Exception):
    """The same delivery was stored before (another worker's copy, or a resend)."""


def store_event(
    conn: Connection,
    *,
    provider: str,
    dedupe_key: str,
    kind: str,
    family: str,
    subject: str | None,
    user_id: int | None,
    sent_at: datetime,
    received_at: datetime,
    payload: dict[str, Any],
) -> int:
    """Insert the event (outcome ``received``); Duplicate when its key is taken."""
    try:
        with conn.begin_nested():
            result = conn.execute(
                insert(WebhookEvent).values(
                    provider=provider,
                    dedupe_key=dedupe_key[:100],
                    kind=kind[:80],
                    family=family,
                    subject=subject[:100] if subject else None,
                    user_id=user_id,
                    sent_at=sent_at,
                    received_at=received_at,
                    outcome="received",
                    payload=json.dumps(payload, default=str)[:PAYLOAD_CHARS],
                )
            )
    except IntegrityError as exc:
        raise Duplicate(dedupe_key) from exc
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def newer_applied(
    conn: Connection, provider: str, subject: str | None, family: str, sent_at: datetime
) -> bool:
    """Whether an event of the same family about the same subject, sent later, was applied."""
    if subject is None:
        return False
    return (
        conn.execute(
            select(func.count())
            .select_from(WebhookEvent)
            .where(
                WebhookEvent.provider == provider,
                WebhookEvent.subject == subject,
                WebhookEvent.family == family,
                WebhookEvent.outcome == "applied",
                WebhookEvent.sent_at > sent_at,
            )
        ).scalar_one()
        > 0
    )


def received_recently(conn: Connection, provider: str, now: datetime, within: timedelta) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.provider == provider, WebhookEvent.received_at > now - within)
        ).scalar_one()
    )


def same_body_recently(
    conn: Connection, provider: str, digest: str, now: datetime, within: timedelta
) -> bool:
    return (
        conn.execute(
            select(func.count())
            .select_from(WebhookEvent)
            .where(
                WebhookEvent.provider == provider,
                WebhookEvent.dedupe_key.like(f"{digest}:%"),
                WebhookEvent.received_at > now - within,
            )
        ).scalar_one()
        > 0
    )


def set_outcome(conn: Connection, event_id: int, outcome: str) -> None:
    conn.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(outcome=outcome))


def forget_old_events(conn: Connection, now: datetime) -> int:
    """Delete events received more than KEEP_EVENTS_FOR ago; returns how many.

    One still ``received`` (not applied yet) stays: ``apply_pending`` still owes it."""
    result = conn.execute(
        delete(WebhookEvent).where(
            WebhookEvent.received_at <= now - KEEP_EVENTS_FOR,
            WebhookEvent.outcome != "received",
        )
    )
    return int(result.rowcount or 0)
