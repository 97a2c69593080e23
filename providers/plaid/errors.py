"""The one place Plaid's exceptions are translated into ``core.errors``."""

from __future__ import annotations

from typing import Any

from core.errors import (
    ItemNotFound,
    LoginRequired,
    MalformedResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
from core.redaction import redact_text
from core.untrusted import quoted
from core.untrusted_json import loads_untrusted
from providers.calls import map_network_error, retry_after_seconds

PROVIDER = "plaid"
# How much of Plaid's own error message a message quotes.
DETAIL_CHARS = 300

# Plaid error codes that are worth another try with backoff (Plaid's own advice).
RETRYABLE_CODES = frozenset(
    {
        "INSTITUTION_DOWN",
        "INSTITUTION_NOT_RESPONDING",
        "INSTITUTION_NOT_AVAILABLE",
        "INTERNAL_SERVER_ERROR",
        "PLANNED_MAINTENANCE",
        "PRODUCT_NOT_READY",
    }
)
# The person must re-link through Link update mode; retrying cannot help and
# repeated calls on a broken Item only add noise at the institution.
LOGIN_REQUIRED_CODES = frozenset(
    {"ITEM_LOGIN_REQUIRED", "PENDING_EXPIRATION", "PENDING_DISCONNECT", "ACCESS_NOT_GRANTED"}
)
ITEM_GONE_CODES = frozenset({"ITEM_NOT_FOUND", "INVALID_ACCESS_TOKEN"})
APP_CREDENTIAL_CODES = frozenset({"INVALID_API_KEYS", "INVALID_CLIENT_ID", "INVALID_SECRET"})


def plaid_detail(error: dict[str, Any]) -> str | None:
    """Plaid's own words on an error (``display_message``, else ``error_message``) as a
    message quotes them: provider text, so one short line between quotation marks."""
    detail = error.get("display_message") or error.get("error_message")
    return quoted(detail, DETAIL_CHARS) if detail else None


def _plaid_error_fields(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            parsed = loads_untrusted(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return body if isinstance(body, dict) else {}


def map_plaid_error(exc: BaseException, endpoint: str) -> ProviderError:
    import plaid  # the SDK loads on the first call, not at start-up

    if isinstance(exc, ProviderError):
        return exc
    network = map_network_error(exc, provider=PROVIDER, display="Plaid", endpoint=endpoint)
    if network is not None:
        return network
    if isinstance(exc, plaid.ApiException):
        status = getattr(exc, "status", None) or None
        fields = _plaid_error_fields(exc)
        code = fields.get("error_code")
        detail = plaid_detail(fields) or exc.reason
        message = redact_text(f"Plaid {endpoint} failed ({status} {code}): {detail}")
        kwargs: dict[str, Any] = {"provider": PROVIDER, "status": status, "code": code}
        kwargs["endpoint"] = endpoint
        if code in LOGIN_REQUIRED_CODES:
            return LoginRequired(
                f"{message}. The Item needs the person to log in again (Link update mode).",
                **kwargs,
            )
        if code in ITEM_GONE_CODES:
            return ItemNotFound(message, **kwargs)
        if code in APP_CREDENTIAL_CODES or status == 401:
            return ProviderAuthError(message, **kwargs)
        if "RATE_LIMIT_EXCEEDED" in (code, fields.get("error_type")) or status == 429:
            retry_after = retry_after_seconds(getattr(exc, "headers", None))
            return RateLimited(message, retry_after=retry_after, **kwargs)
        if code in RETRYABLE_CODES or (status is not None and status >= 500):
            return ProviderUnavailable(message, **kwargs)
        if status == 0 or status is None:
            return ProviderUnavailable(message, **kwargs)
        if not fields:
            return MalformedResponse(message, **kwargs)
        return ProviderRejected(message, **kwargs)
    # plaid-python parses strictly: a missing required field is a bare TypeError,
    # a wrong type ApiTypeError/ApiValueError; a non-JSON body a ValueError; a body nested
    # deeper than the parser's stack a RecursionError (the same answer again: not retried).
    if isinstance(
        exc, (TypeError, ValueError, RecursionError, plaid.ApiTypeError, plaid.ApiValueError)
    ):
        return MalformedResponse(
            f"Plaid answered {endpoint} with a body we cannot read: {redact_text(str(exc))[:200]}",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return ProviderUnavailable(
        f"Plaid {endpoint} failed: {redact_text(type(exc).__name__)}",
        provider=PROVIDER,
        endpoint=endpoint,
    )
