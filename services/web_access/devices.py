"""Device cookies: a browser that has logged in keeps its own budget of login attempts.

OWASP's "Slow Down Online Guessing Attacks with Device Cookies": after a successful
login the browser gets a cookie naming the account, a random nonce and when it was
issued, signed with HMAC-SHA256 under a key derived from the app's secret key (the one
that signs the session cookie, with its own purpose label, so neither cookie can stand
in for the other). It carries no secret of the account and opens nothing: it only says
"this browser logged in to this account before", and the login brake
(``services.web_access.brake``) then counts that browser's attempts against its own budget
instead of its address's and the account's. A cookie that is forged, altered, expired,
too long or for another account than the one entered is no device cookie at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from datetime import timedelta

from services.clock import Clock

DEVICE_COOKIE_LIFETIME = timedelta(days=365)
MAX_DEVICE_COOKIE_LENGTH = 1024
_PURPOSE = b"brokerage-hub login device cookie v1"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")


def _same_account(a: str, b: str) -> bool:
    return secrets.compare_digest(a.strip().lower().encode(), b.strip().lower().encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DeviceCookies:
    """Issues and reads device cookies; the secret key and the clock are given."""

    def __init__(
        self, secret_key: str, clock: Clock, lifetime: timedelta = DEVICE_COOKIE_LIFETIME
    ) -> None:
        self._key = hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()
        self._clock = clock
        self.lifetime = lifetime

    def issue(self, account: str) -> str:
        """A new cookie value for a browser that just logged in to ``account``."""
        claims = {
            "a": account.strip().lower(),
            "n": secrets.token_urlsafe(16),
            "t": int(self._clock().timestamp()),
        }
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{body}.{self._signature(body)}"

    def device_of(self, cookie: str | None, account: str) -> str | None:
        """The device's id when ``cookie`` is a valid device cookie for ``account``, else None."""
        if not cookie or len(cookie) > MAX_DEVICE_COOKIE_LENGTH or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not secrets.compare_digest(signature.encode(), self._signature(body).encode()):
            return None
        try:
            claims = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        named, nonce, issued = claims.get("a"), claims.get("n"), claims.get("t")
        if not (
            isinstance(named, str)
            and isinstance(nonce, str)
            and _NONCE.fullmatch(nonce)
            and isinstance(issued, int)
        ):
            return None
        if not _same_account(named, account):
            return None
        if self._clock().timestamp() - issued > self.lifetime.total_seconds():
            return None
        return nonce

    def _signature(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).digest())
