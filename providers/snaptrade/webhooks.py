"""Verifying a SnapTrade webhook as SnapTrade documents it.

The ``Signature`` header is base64(HMAC-SHA256(consumer key, the payload re-serialized as
JSON with sorted keys and compact separators)): computed over the parsed and re-serialized
JSON, not the raw bytes. A delivery whose ``eventTimestamp`` is more than 5 minutes away
from now is refused (a replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from core.errors import WebhookRejected
from core.untrusted_json import UnreadableJSON, loads_untrusted

MAX_AGE_SECONDS = 300


def canonical_json(payload: dict[str, Any]) -> str:
    """The payload as SnapTrade signs it: sorted keys, compact separators."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def signature_of(payload: dict[str, Any], consumer_key: str) -> str:
    digest = hmac.new(
        consumer_key.encode(), canonical_json(payload).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def verify_snaptrade_webhook(
    body: bytes, header: str | None, *, consumer_key: str, now: datetime
) -> tuple[dict[str, Any], datetime]:
    """The webhook's JSON and its ``eventTimestamp``; WebhookRejected when it does not hold."""
    if not header or len(header) > 200:
        raise WebhookRejected("the Signature header is missing")
    if not consumer_key:
        raise WebhookRejected("SNAPTRADE_CONSUMER_KEY is not set, so no signature can verify")
    try:
        # Plain JSON only (bounded depth, finite numbers): the signature check re-serializes
        # it, and 60,000 "[" must reach no parser or serializer that recurses.
        payload = loads_untrusted(body)
    except UnreadableJSON as exc:
        raise WebhookRejected(f"the SnapTrade webhook body is not JSON we accept ({exc})") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected("the SnapTrade webhook body is not a JSON object")
    expected = signature_of(payload, consumer_key).encode()
    # Compared as bytes: a header with any character is refused, never raises.
    if not hmac.compare_digest(expected, header.strip().encode("utf-8", "replace")):
        raise WebhookRejected("the SnapTrade webhook signature does not verify")
    stamp = payload.get("eventTimestamp")
    try:
        sent = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError as exc:
        raise WebhookRejected("the SnapTrade webhook has no eventTimestamp") from exc
    if sent.tzinfo is None or abs((now - sent).total_seconds()) > MAX_AGE_SECONDS:
        raise WebhookRejected("the SnapTrade webhook is more than 5 minutes old")
    return payload, sent
