"""Who is calling SnapTrade: the request signature, the user credentials, and
registering a user (which issues the user secret the credentials check).

Every request except ``GET /`` is signed the way snaptrade-python-sdk signs it:
query ``clientId`` and ``timestamp`` plus header ``Signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

from sandbox import demo
from sandbox.routing import ApiRequest, ApiResponse, iso_timestamp
from sandbox.snaptrade.common import SnapTradeErrorSpec, error, snaptrade_error
from sandbox.snaptrade.webhooks import SnapTradeWebhooks
from sandbox.state import StateStore

# SnapTrade rejects a request whose timestamp is more than 5 minutes off.
TIMESTAMP_TOLERANCE_SECONDS = 300

_UNSIGNED_ENDPOINTS = {"snaptrade /"}
_APP_SCOPED_ENDPOINTS = {"snaptrade /", "snaptrade /snapTrade/registerUser"}

_BAD_SIGNATURE = SnapTradeErrorSpec(401, "1076", "Unable to verify signature sent")
_BAD_USER = SnapTradeErrorSpec(401, "1083", "Invalid userID or userSecret provided")


def request_signature(consumer_key: str, path: str, query: str, content: Any) -> str:
    """SnapTrade's request signature, computed exactly as snaptrade-python-sdk does.

    ``path`` is the API path without the host (the SDK signs ``/accounts`` even
    when its host is ``http://127.0.0.1:PORT/snaptrade``) and ``query`` is the raw
    query string as sent, ``clientId`` and ``timestamp`` included. A request
    without a body, or with ``{}``, signs ``content`` as null.
    """
    canonical = json.dumps(
        {"content": None if content in (None, {}) else content, "path": path, "query": query},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hmac.new(consumer_key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Credentials:
    """Checks each request's signature and user, and registers users, over the shared state."""

    def __init__(self, store: StateStore, webhooks: SnapTradeWebhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    def authenticate(self, request: ApiRequest) -> ApiResponse | None:
        """None when the request may proceed, else SnapTrade's 400 / 401 answer."""
        if request.endpoint in _UNSIGNED_ENDPOINTS:
            return None
        if request.body is not None and not request.body_is_json:
            return error(400, "0000", "JSON parse error")
        if request.args.get("clientId") != demo.SNAPTRADE_CLIENT_ID:
            return snaptrade_error(
                SnapTradeErrorSpec(401, _BAD_SIGNATURE.code, "Invalid clientId provided")
            )
        try:
            timestamp = int(request.args.get("timestamp", ""))
        except ValueError:
            timestamp = None
        if timestamp is None or abs(request.now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
            return snaptrade_error(
                SnapTradeErrorSpec(
                    401, _BAD_SIGNATURE.code, "Timestamp is missing or more than 5 minutes off"
                )
            )
        query = "&".join(
            part for part in request.raw_query.split("&") if not part.startswith("Signature=")
        )
        expected = request_signature(demo.SNAPTRADE_CONSUMER_KEY, request.path, query, request.body)
        if not hmac.compare_digest(request.headers.get("Signature", ""), expected):
            return snaptrade_error(_BAD_SIGNATURE)
        if request.endpoint in _APP_SCOPED_ENDPOINTS:
            return None
        user = self.store.read()["snaptrade"]["users"].get(request.args.get("userId", ""))
        if user is None or not hmac.compare_digest(
            user["user_secret"], request.args.get("userSecret", "")
        ):
            return snaptrade_error(_BAD_USER)
        return None

    def register_user(self, request: ApiRequest) -> ApiResponse:
        user_id = request.json_object().get("userId")
        if not isinstance(user_id, str) or not user_id:
            return error(400, "0000", "userId is required")
        with self.store.transaction() as state:
            users = state["snaptrade"]["users"]
            if user_id in users:
                return error(400, "1010", "User already exist")
            secret = str(uuid.uuid4())
            users[user_id] = {"user_secret": secret, "created_at": iso_timestamp(request.now)}
        self.webhooks.send("USER_REGISTERED", user_id, request.now)  # only with a URL set
        return ApiResponse(200, {"userId": user_id, "userSecret": secret})
