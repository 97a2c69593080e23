"""Signing webhooks exactly as the providers do.

**Plaid**: the body is JSON (indented, as Plaid sends it, so a receiver that hashes a
re-serialization instead of the raw bytes finds out); the ``Plaid-Verification`` header
is a JWT, header ``{"alg": "ES256", "kid": ..., "typ": "JWT"}``, claims ``iat`` (unix
seconds of the emulator clock) and ``request_body_sha256`` (hex SHA-256 of the body
bytes), signed with the current P-256 key. ``/webhook_verification_key/get`` serves each
key's public half as a JWK.

The keys live in the shared state (``state["plaid"]["webhook_keys"]``: the private key as
PEM, ``created_at``, ``expired_at``, and which one is ``current``), so every emulator
process sharing a state file signs with the same key and serves the same JWKs. The first
key is made when the first webhook is signed; :meth:`PlaidKeyRing.rotate` makes a new one
current and sets the old one's ``expired_at`` (it is still served). A state reset drops
the keys: the next webhook is signed with a new key under a new ``kid``.

**SnapTrade**: the body is ``json.dumps(payload, separators=(",", ":"), sort_keys=True)``
and the ``Signature`` header is base64(HMAC-SHA256(consumer key, that same text)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from sandbox import demo
from sandbox.state import StateStore
from sandbox.webhooks.outbox import LATE_SECONDS, Rendered

JSON_HEADERS = {"Content-Type": "application/json"}
PLAID_HEADER = "Plaid-Verification"
SNAPTRADE_HEADER = "Signature"


class PlaidKeyRing:
    """Plaid's webhook signing keys, kept in the emulator's shared state."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}  # parsed PEMs, by kid
        self._forger: ec.EllipticCurvePrivateKey | None = None

    def current_kid(self, now: float) -> str:
        """The kid that signs now; the first key is made (created_at ``now``) if none is."""
        ring = _ring(self._store.read())
        kid = ring.get("current")
        if kid in ring.get("keys", {}):
            return str(kid)
        with self._store.transaction() as state:
            ring = state["plaid"].setdefault("webhook_keys", {"current": None, "keys": {}})
            if ring.get("current") not in ring["keys"]:  # made meanwhile by another process?
                ring["current"] = _add_key(ring, now)
            return str(ring["current"])

    def rotate(self, now: float) -> str:
        """Make a new key current; the old one stays served with ``expired_at`` = ``now``."""
        with self._store.transaction() as state:
            ring = state["plaid"].setdefault("webhook_keys", {"current": None, "keys": {}})
            old = ring["keys"].get(ring.get("current"))
            if old is not None:
                old["expired_at"] = int(now)
            ring["current"] = _add_key(ring, now)
            return str(ring["current"])

    def public_jwk(self, kid: str) -> dict[str, Any] | None:
        """The key ``kid`` as Plaid's JWKPublicKey, or None when there is no such key."""
        record = _ring(self._store.read()).get("keys", {}).get(kid)
        if record is None:
            return None
        public = ECAlgorithm.to_jwk(self._private_key(kid, record).public_key(), as_dict=True)
        return {
            "alg": "ES256",
            "created_at": record["created_at"],
            "crv": public["crv"],
            "expired_at": record["expired_at"],
            "kid": kid,
            "kty": public["kty"],
            "use": "sig",
            "x": public["x"],
            "y": public["y"],
        }

    def sign(self, payload: dict[str, Any], event_time: float, faults: frozenset[str]) -> Rendered:
        """Headers and body of a Plaid webhook reporting an event at ``event_time``."""
        body = json.dumps(payload, indent=2).encode()
        if "unsigned" in faults:
            return dict(JSON_HEADERS), body
        kid = self.current_kid(event_time)
        record = _ring(self._store.read())["keys"][kid]
        # "forged": signed with a key Plaid never published, under the real kid.
        key = self._forger_key() if "forged" in faults else self._private_key(kid, record)
        late = LATE_SECONDS if "late" in faults else 0
        claims = {
            "iat": int(event_time) - late,
            "request_body_sha256": hashlib.sha256(body).hexdigest(),
        }
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "JWT"})
        return JSON_HEADERS | {PLAID_HEADER: token}, body

    def _private_key(self, kid: str, record: dict[str, Any]) -> ec.EllipticCurvePrivateKey:
        with self._lock:
            key = self._private.get(kid)
            if key is None:
                loaded = serialization.load_pem_private_key(
                    record["private_key"].encode(), password=None
                )
                if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                    raise ValueError(f"webhook key {kid} is not an EC key")
                key = self._private[kid] = loaded
            return key

    def _forger_key(self) -> ec.EllipticCurvePrivateKey:
        with self._lock:
            if self._forger is None:
                self._forger = ec.generate_private_key(ec.SECP256R1())
            return self._forger


def _ring(state: dict[str, Any]) -> dict[str, Any]:
    # A state from before webhooks (or just reset) has no keys yet.
    return state.get("plaid", {}).get("webhook_keys") or {}


def _add_key(ring: dict[str, Any], now: float) -> str:
    kid = str(uuid.uuid4())
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ring["keys"][kid] = {"private_key": pem.decode(), "created_at": int(now), "expired_at": None}
    return kid


def event_timestamp(unix_seconds: float) -> str:
    """SnapTrade's ``eventTimestamp``: ISO 8601 in UTC with microseconds, as it sends them
    (``2026-11-29T15:00:00.000000+00:00``)."""
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat(timespec="microseconds")


def snaptrade_signature(canonical: str, consumer_key: str = demo.SNAPTRADE_CONSUMER_KEY) -> str:
    digest = hmac.new(consumer_key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_snaptrade(payload: dict[str, Any], event_time: float, faults: frozenset[str]) -> Rendered:
    """Headers and body of a SnapTrade webhook reporting an event at ``event_time``."""
    late = LATE_SECONDS if "late" in faults else 0
    stamped = payload | {"eventTimestamp": event_timestamp(event_time - late)}
    canonical = json.dumps(stamped, separators=(",", ":"), sort_keys=True)
    if "unsigned" in faults:
        return dict(JSON_HEADERS), canonical.encode()
    # "forged": an HMAC under a key that is not the consumer key.
    key = "forged-" + demo.SNAPTRADE_CONSUMER_KEY if "forged" in faults else None
    signature = snaptrade_signature(canonical, key or demo.SNAPTRADE_CONSUMER_KEY)
    return JSON_HEADERS | {SNAPTRADE_HEADER: signature}, canonical.encode()
