"""Receiving a provider webhook: verify it, store it once, apply its (cheap) state change.

Nothing here calls a provider for the data an event announces: a due Item or account is
refreshed on the next read of it, or by ``flask --app app process-webhooks``. The only
provider call is Plaid's verification key, fetched once per ``kid`` across all processes
and kept in the database (``plaid_keys``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from core.errors import Conflict
from providers.plaid.webhooks import verify_plaid_webhook
from providers.snaptrade.webhooks import canonical_json, verify_snaptrade_webhook
from services.clock import Clock
from services.models import WebhookEvent
from services.webhooks.apply import EventEffects, plaid_effects, snaptrade_effects
from services.webhooks.log import (
    Duplicate,
    received_recently,
    same_body_recently,
    set_outcome,
    store_event,
)
from services.webhooks.plaid_keys import PlaidKeyStore

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=5)
# Verified events a provider may deliver per minute before the route answers 429.
PER_MINUTE = 600


class WebhookReceiver:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        plaid_keys: PlaidKeyStore,
        snaptrade_consumer_key: str,
        effects: EventEffects,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.plaid_keys = plaid_keys
        self._consumer_key = snaptrade_consumer_key
        self._effects = effects

    # --- Plaid ------------------------------------------------------------------------

    def receive_plaid(self, body: bytes, header: str | None) -> dict[str, Any]:
        now = self._clock()
        self._check_rate("plaid", now)
        payload, sent_at = verify_plaid_webhook(
            body, header, key_for=self.plaid_keys.key_for, now=now
        )
        kind = f"{payload.get('webhook_type')}:{payload.get('webhook_code')}"
        digest = hashlib.sha256(body).hexdigest()
        with self._engine.begin() as conn:
            if same_body_recently(conn, "plaid", digest, now, DUPLICATE_WINDOW):
                return {"status": "duplicate", "kind": kind}
        effect = plaid_effects(payload, self._effects)
        return self._store_and_apply(
            "plaid", f"{digest}:{int(sent_at.timestamp())}", kind, sent_at, now, payload, effect
        )

    # --- SnapTrade --------------------------------------------------------------------

    def receive_snaptrade(self, body: bytes, header: str | None) -> dict[str, Any]:
        now = self._clock()
        self._check_rate("snaptrade", now)
        payload, sent_at = verify_snaptrade_webhook(
            body, header, consumer_key=self._consumer_key, now=now
        )
        kind = str(payload.get("eventType") or "UNKNOWN")
        # Without a webhookId, a copy is known by the JSON the signature covers, so the same
        # signed payload re-sent with other whitespace or key order is still one event.
        webhook_id = str(
            payload.get("webhookId") or hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        )
        effect = snaptrade_effects(payload, self._effects)
        return self._store_and_apply(
            "snaptrade", f"snaptrade:{webhook_id}", kind, sent_at, now, payload, effect
        )

    def apply_pending(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Apply events stored but not applied (their process stopped in between)."""
        cutoff = self._clock() - older_than
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    WebhookEvent.id,
                    WebhookEvent.provider,
                    WebhookEvent.sent_at,
                    WebhookEvent.payload,
                )
                .where(WebhookEvent.outcome == "received", WebhookEvent.received_at < cutoff)
                .order_by(WebhookEvent.sent_at)
            ).all()
        for row in rows:
            payload = json.loads(row.payload)
            effects = plaid_effects if row.provider == "plaid" else snaptrade_effects
            outcome = effects(payload, self._effects).apply(row.sent_at)
            with self._engine.begin() as conn:
                set_outcome(conn, row.id, outcome)
        return len(rows)

    # --- both -------------------------------------------------------------------------

    def _check_rate(self, provider: str, now: datetime) -> None:
        with self._engine.connect() as conn:
            if received_recently(conn, provider, now, timedelta(minutes=1)) >= PER_MINUTE:
                raise Conflict(f"too many {provider} webhooks this minute; deliver again later")

    def _store_and_apply(
        self,
        provider: str,
        dedupe_key: str,
        kind: str,
        sent_at: datetime,
        now: datetime,
        payload: dict[str, Any],
        effect: Any,
    ) -> dict[str, Any]:
        try:
            with self._engine.begin() as conn:
                event_id = store_event(
                    conn,
                    provider=provider,
                    dedupe_key=dedupe_key,
                    kind=kind,
                    family=effect.family,
                    subject=effect.subject,
                    user_id=effect.user_id,
                    sent_at=sent_at,
                    received_at=now,
                    payload=payload,
                )
        except Duplicate:
            return {"status": "duplicate", "kind": kind}
        # Applied after the event is stored (its own small transactions): a process that
        # stops in between leaves it "received", and process-webhooks applies it then.
        outcome = effect.apply(sent_at)
        with self._engine.begin() as conn:
            set_outcome(conn, event_id, outcome)
        log.info("%s webhook %s: %s", provider, kind, outcome)
        return {"status": outcome, "kind": kind}
