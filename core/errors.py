"""Brokerage Hub's own error classes.

Foreign exceptions (SDK, HTTP, boto3) are mapped to these exactly once, at the
adapter that called the foreign code, with ``raise ... from exc``. Entry points
catch :class:`BrokerageHubError` and render ``to_dict()``; anything else is a
bug and surfaces as a generic internal error. A message quotes at most a short
prefix of any long value in it (:func:`bounded_message`), whatever the caller sent.

    BrokerageHubError
    ├── ConfigError                 a setting has a bad value (start-up stops)
    ├── InvalidInput                the caller sent something we cannot accept
    ├── NotFound                    a named thing does not exist
    ├── Conflict                    the request clashes with current state
    ├── SchemaBehind                the database schema is older than the code (migrate)
    ├── Unavailable                 something this process needs is down: 503
    │   ├── DatabaseUnavailable     the database cannot be reached (comes back by itself)
    │   └── SecretStoreUnavailable  the secret store cannot be read or written
    ├── SecretStoreError
    │   ├── SecretNotFound
    │   ├── SecretScheduledForDeletion   unreadable until restored
    │   └── SecretAlreadyExists
    └── ProviderError               provider, http_status, code, message
        ├── ProviderUnavailable     5xx, network failure: retried
        │   └── ProviderTimeout     no answer within the timeout: retried
        ├── RateLimited             429: retried, honouring Retry-After
        ├── MalformedResponse       the answer does not have the expected shape
        ├── ProviderAuthError       our app credentials were refused
        ├── LoginRequired           the person must re-link (Plaid ITEM_LOGIN_REQUIRED)
        ├── ConnectionDisabled      SnapTrade connection disabled (code 3003)
        ├── TradingNotPermitted     SnapTrade 1020 / 1066
        ├── ItemNotFound            Plaid says the Item is gone
        ├── ProviderRejected        any other 4xx: never retried
        └── ProviderDisabled        the provider is switched off here: never called
"""

from __future__ import annotations

import re
from typing import Any

# An error message quotes what it was given; a 100 kB argument must not come back whole.
MAX_MESSAGE_CHARS = 500
LONG_RUN_CHARS = 80  # a quoted value or unbroken run longer than this is cut ...
KEPT_PREFIX_CHARS = 40  # ... to this many characters and "…"
_LONG_RUN = re.compile(
    "|".join(
        (
            rf"'[^'\n]{{{LONG_RUN_CHARS - 1},}}'",  # a long 'quoted' value
            rf'"[^"\n]{{{LONG_RUN_CHARS - 1},}}"',  # a long "quoted" value
            rf"""[^\s'"]{{{LONG_RUN_CHARS + 1},}}""",  # a long unbroken run
        )
    )
)


def bounded_message(message: str) -> str:
    """``message`` with every long quoted value or run cut to a short prefix, and capped.

    The one place error text is bounded, for every surface (HTTP, MCP, CLI): a caller who
    sends a huge id gets its first characters back, enough to recognise it.
    """

    def cut(match: re.Match[str]) -> str:
        run = match.group(0)
        quote = run[0] if run[0] in "'\"" and run[-1] == run[0] else ""
        inner = run[1:-1] if quote else run
        return f"{quote}{inner[:KEPT_PREFIX_CHARS]}…{quote}"

    shortened = _LONG_RUN.sub(cut, message)
    if len(shortened) > MAX_MESSAGE_CHARS:
        shortened = shortened[: MAX_MESSAGE_CHARS - 1] + "…"
    return shortened


class BrokerageHubError(Exception):
    """Base of every error Brokerage Hub reports on purpose."""

    kind = "error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape every surface (HTTP, MCP, CLI) uses."""
        return {"error": {"type": self.kind, "message": bounded_message(self.message)}}


class ConfigError(BrokerageHubError):
    kind = "config_error"


class InvalidInput(BrokerageHubError):
    kind = "invalid_input"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.field:
            body["error"]["field"] = self.field
        return body


class NotFound(BrokerageHubError):
    kind = "not_found"
    http_status = 404


class Conflict(BrokerageHubError):
    kind = "conflict"
    http_status = 409


class WebhookRejected(BrokerageHubError):
    """A delivery whose signature, age or body does not verify: 401, and nothing changes."""

    kind = "webhook_rejected"
    http_status = 401


class SecretStoreError(BrokerageHubError):
    kind = "secret_store_error"


class SecretNotFound(SecretStoreError, NotFound):
    kind = "secret_not_found"


class SecretScheduledForDeletion(SecretStoreError):
    kind = "secret_scheduled_for_deletion"
    http_status = 409


class SecretAlreadyExists(SecretStoreError):
    kind = "secret_already_exists"
    http_status = 409


class ProviderError(BrokerageHubError):
    """A provider call failed. ``retryable`` drives the retry policy."""

    kind = "provider_error"
    http_status = 502
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.endpoint = endpoint

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"].update(
            {"provider": self.provider, "provider_status": self.status, "provider_code": self.code}
        )
        if self.retry_after is not None:
            body["error"]["retry_after_seconds"] = self.retry_after
        return body


class ProviderUnavailable(ProviderError):
    kind = "provider_unavailable"
    http_status = 503
    retryable = True


class ProviderTimeout(ProviderUnavailable):
    kind = "provider_timeout"
    http_status = 504


class RateLimited(ProviderError):
    kind = "rate_limited"
    http_status = 429
    retryable = True


class MalformedResponse(ProviderError):
    kind = "malformed_response"


class ProviderAuthError(ProviderError):
    kind = "provider_auth_error"


class LoginRequired(ProviderError):
    kind = "login_required"
    http_status = 409


class ConnectionDisabled(ProviderError):
    kind = "connection_disabled"
    http_status = 409


class TradingNotPermitted(ProviderError):
    kind = "trading_not_permitted"
    http_status = 403


class ItemNotFound(ProviderError):
    kind = "item_not_found"
    http_status = 404


class ProviderRejected(ProviderError):
    kind = "provider_rejected"


PROVIDER_DISPLAY_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


class ProviderDisabled(ProviderError):
    """The provider's environment setting is ``disabled``: nothing may call it."""

    kind = "provider_disabled"
    http_status = 409

    def __init__(self, provider: str) -> None:
        name = PROVIDER_DISPLAY_NAMES.get(provider, provider)
        super().__init__(
            f"{name} is disabled here ({provider.upper()}_ENV=disabled): it is never called",
            provider=provider,
        )


class SchemaBehind(BrokerageHubError):
    """The database schema is not at the newest migration: ``flask --app app migrate``."""

    kind = "schema_behind"
    http_status = 503


class Unavailable(BrokerageHubError):
    """Something this process needs (the database, the secret store) cannot be used: 503."""

    kind = "unavailable"
    http_status = 503
    retry_after: float | None = None


class DatabaseUnavailable(Unavailable):
    """The database does not answer; it is retried on the next request (Retry-After)."""

    kind = "database_unavailable"
    retry_after = 5.0

    def __init__(self, message: str = "the database is not reachable; try again shortly") -> None:
        super().__init__(message)


class SecretStoreUnavailable(Unavailable):
    """The secret store as a whole cannot be read or written (a corrupt or unreadable file).

    Not a :class:`SecretStoreError` on purpose: code that copes with one missing secret
    (and shows the rest) must not mistake a broken store for it.
    """

    kind = "secret_store_unavailable"
