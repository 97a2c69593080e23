"""Verifying a Plaid webhook as Plaid documents it, and the calls webhooks need.

The ``Plaid-Verification`` header is a JWT signed with ES256 (any other ``alg`` is refused)
by the key named in its ``kid``, fetched with ``/webhook_verification_key/get``. Its ``iat``
must be at most 5 minutes old, and its ``request_body_sha256`` claim must equal the SHA-256
of the body as received. PyJWT checks the signature.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.errors import WebhookRejected
from core.redaction import register_secret
from core.untrusted_json import UnreadableJSON, loads_untrusted
from providers.plaid.client import call, to_plain

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi

MAX_AGE_SECONDS = 300
ALGORITHM = "ES256"


def fetch_verification_key(client: PlaidApi, key_id: str) -> dict[str, Any]:
    """The JWK Plaid signs webhooks with under ``key_id`` (``/webhook_verification_key/get``)."""
    from plaid.model.webhook_verification_key_get_request import (
        WebhookVerificationKeyGetRequest,
    )

    request = WebhookVerificationKeyGetRequest(key_id=key_id)
    answer = to_plain(
        call(
            client,
            "/webhook_verification_key/get",
            lambda: client.webhook_verification_key_get(request),
        )
    )
    key = answer.get("key")
    if not isinstance(key, dict):
        raise WebhookRejected("Plaid sent no verification key for the webhook's kid")
    return key


def update_item_webhook(access_token: str, client: PlaidApi, url: str, *, subject: str) -> str:
    """Point an existing Item's webhooks at ``url`` (``/item/webhook/update``); its item_id."""
    from plaid.model.item_webhook_update_request import ItemWebhookUpdateRequest

    register_secret(access_token)
    request = ItemWebhookUpdateRequest(access_token=access_token, webhook=url)
    answer = to_plain(
        call(
            client,
            "/item/webhook/update",
            lambda: client.item_webhook_update(request),
            subject=subject,
        )
    )
    return str((answer.get("item") or {}).get("item_id") or "")


def verify_plaid_webhook(
    body: bytes,
    header: str | None,
    *,
    key_for: Callable[[str, dict[str, Any]], dict[str, Any]],
    now: datetime,
) -> tuple[dict[str, Any], datetime]:
    """The webhook's JSON and when Plaid sent it (the JWT's ``iat``); WebhookRejected when
    anything does not hold.

    Everything a forger controls is checked before the key is asked for: the header's
    shape, the claims' age and the body's hash, and the body as a JSON object.
    ``key_for(kid, payload)`` then returns the JWK (kept by the caller, who may refuse to
    look up an unknown kid for an event about nothing it knows); the signature is checked
    last, with that key."""
    import jwt
    from jwt.algorithms import ECAlgorithm

    if not header or len(header) > 4096:
        raise WebhookRejected("the Plaid-Verification header is missing")
    try:
        unverified = jwt.get_unverified_header(header)
        claimed = jwt.decode(header, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise WebhookRejected("the Plaid-Verification header is not a JWT") from exc
    if unverified.get("alg") != ALGORITHM:
        raise WebhookRejected("the Plaid-Verification JWT is not signed with ES256")
    kid = unverified.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 200:
        raise WebhookRejected("the Plaid-Verification JWT names no key")
    _check_claims(claimed, body, now)
    payload = _payload(body)
    jwk = key_for(kid, payload)
    if jwk.get("expired_at"):
        raise WebhookRejected("the Plaid-Verification key has expired")
    try:
        key = ECAlgorithm.from_jwk(json.dumps(jwk))
        claims = jwt.decode(
            header,
            key=key,  # type: ignore[arg-type]
            algorithms=[ALGORITHM],
            options={"verify_iat": False, "require": ["iat", "request_body_sha256"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise WebhookRejected("the Plaid-Verification signature does not verify") from exc
    issued = _check_claims(claims, body, now)
    return payload, datetime.fromtimestamp(issued, now.tzinfo)


def _check_claims(claims: dict[str, Any], body: bytes, now: datetime) -> float:
    """The JWT's ``iat`` when it is at most 5 minutes away and the body hash matches."""
    issued = claims.get("iat")
    age = math.inf
    if isinstance(issued, int | float) and not isinstance(issued, bool):
        # A number past any date (10**400) is no time it was sent: its age stays infinite.
        with contextlib.suppress(OverflowError):
            age = abs(now.timestamp() - float(issued))
    if not age <= MAX_AGE_SECONDS:
        raise WebhookRejected("the Plaid webhook is more than 5 minutes old")
    digest = hashlib.sha256(body).hexdigest().encode()
    claimed = str(claims.get("request_body_sha256"))[:100].encode("utf-8", "replace")
    if not hmac.compare_digest(digest, claimed):  # bytes: any character compares, none raises
        raise WebhookRejected("the Plaid webhook body does not match its signature")
    return float(issued)  # type: ignore[arg-type]  # a number: its age was measured above


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = loads_untrusted(body)
    except UnreadableJSON as exc:
        raise WebhookRejected(f"the Plaid webhook body is not JSON we accept ({exc})") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected("the Plaid webhook body is not a JSON object")
    return payload
