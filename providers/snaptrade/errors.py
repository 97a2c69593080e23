"""The one place SnapTrade's exceptions are translated into ``core.errors``.

:func:`map_snaptrade_error` maps any SDK failure; :func:`map_snaptrade_trading_error`
turns a trading failure into a message a person can act on (1020, 1066, 3003, 429,
410, an expired trade).

SnapTrade's own words in a message (its error ``detail``, a brokerage's name) are provider
text: each is quoted as one short line of plain text between quotation marks
(``core.untrusted.quoted``), so a message can never carry markup, or a line that reads like
an instruction of ours.
"""

from __future__ import annotations

import math
from typing import Any

from core.errors import (
    BrokerageHubError,
    ConnectionDisabled,
    MalformedResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    TradingNotPermitted,
)
from core.redaction import redact_text
from core.untrusted import quoted, quoted_name
from providers.calls import map_network_error, retry_after_seconds

PROVIDER = "snaptrade"
# How much of SnapTrade's own error detail a message quotes.
DETAIL_CHARS = 300


def snaptrade_error_code(exc: Any) -> str | None:
    """SnapTrade's error code, read from ``code`` or the spec's ``default_code``."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        code = body.get("code") or body.get("default_code")
        return str(code) if code not in (None, "") else None
    return None


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("default_detail") or "")
    if isinstance(body, str):
        return body[:200]
    return str(getattr(exc, "reason", "") or "")


def _retry_after(exc: Any) -> float | None:
    return retry_after_seconds(getattr(exc, "headers", None))


def map_snaptrade_error(exc: BaseException, endpoint: str) -> ProviderError:
    from snaptrade_client import ApiException

    if isinstance(exc, ProviderError):
        return exc
    network = map_network_error(exc, provider=PROVIDER, display="SnapTrade", endpoint=endpoint)
    if network is not None:
        return network
    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        code = snaptrade_error_code(exc)
        detail = _detail(exc)
        detail = redact_text(quoted(detail, DETAIL_CHARS)) if detail.strip() else ""
        kwargs: dict[str, Any] = {
            "provider": PROVIDER,
            "status": status,
            "code": code,
            "endpoint": endpoint,
        }
        message = f"SnapTrade {endpoint} failed (HTTP {status}, code {code}): {detail}".rstrip(": ")
        if status == 429:
            return RateLimited(message, retry_after=_retry_after(exc), **kwargs)
        if status == 402 or code == "3003":
            return ConnectionDisabled(
                f"{message}. The brokerage connection is disabled: reconnect it through the "
                "SnapTrade connection portal.",
                **kwargs,
            )
        if code in ("1020", "1066"):
            return TradingNotPermitted(message, **kwargs)
        if status == 425 or code == "3012":
            return ProviderUnavailable(f"{message} (still syncing)", **kwargs)
        if status == 401 and code == "1076":
            return ProviderAuthError(f"{message}. Check SNAPTRADE_CONSUMER_KEY.", **kwargs)
        if status == 401:
            return ProviderAuthError(
                f"{message}. The SnapTrade user is unknown or its user secret is wrong.",
                **kwargs,
            )
        if status is not None and status >= 500:
            return ProviderUnavailable(message, **kwargs)
        if status == 410:
            return ProviderRejected(f"{message}. SnapTrade has retired this endpoint.", **kwargs)
        return ProviderRejected(message, **kwargs)
    # A body nested deeper than the parser's stack is as unreadable as one cut short.
    if isinstance(exc, (ValueError, TypeError, KeyError, RecursionError)):
        return MalformedResponse(
            f"SnapTrade answered {endpoint} with a body we cannot read",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return ProviderUnavailable(
        f"SnapTrade {endpoint} failed ({type(exc).__name__})", provider=PROVIDER, endpoint=endpoint
    )


# --- trading failures, in words a person can act on ----------------------------------

TRADING_1020_MESSAGE = (
    "SnapTrade trading permissions not enabled for {brokerage}. Error code 1020 — contact "
    "SnapTrade support to enable app-level trading."
)
# Every SnapTrade trading failure that gets its own message (the tests hold this list too).
MAPPED_TRADING_FAILURES = ("1020", "1066", "3003", "429", "410", "expired_trade")


def _reconnect_hint(authorization_id: str | None) -> str:
    target = (
        f"reconnect='{authorization_id}'"
        if authorization_id
        else "reconnect set to the connection's authorization id"
    )
    return (
        "through the SnapTrade connection portal (Brokerage Hub's SnapTrade page, or "
        f"login_snaptrade_user(client, user_id, user_secret, connection_type='trade', {target}) "
        "from the REPL)"
    )


def _is_expired_trade(error: ProviderError) -> bool:
    return error.status in (400, 404, 410) and "expired" in error.message.lower()


def map_snaptrade_trading_error(
    exception: BaseException,
    brokerage: str = "",
    *,
    authorization_id: str | None = None,
    endpoint: str = "trading",
) -> BrokerageHubError:
    """A trading failure as an error whose message says what happened and what to do.

    Takes a SnapTrade SDK exception or an already mapped ``ProviderError``; the
    code is read from ``code`` or ``default_code`` of SnapTrade's error body.
    """
    if isinstance(exception, BrokerageHubError) and not isinstance(exception, ProviderError):
        return exception
    # A brokerage's name is provider text: quoted, unless it is one we know (``quoted_name``).
    brokerage = quoted_name(brokerage) if str(brokerage or "").strip() else "this brokerage"
    error = (
        exception
        if isinstance(exception, ProviderError)
        else map_snaptrade_error(exception, endpoint)
    )
    details: dict[str, Any] = {
        "provider": PROVIDER,
        "status": error.status,
        "code": error.code,
        "endpoint": error.endpoint,
    }
    if error.code == "1020":
        return TradingNotPermitted(TRADING_1020_MESSAGE.format(brokerage=brokerage), **details)
    if error.code == "1066":
        return TradingNotPermitted(
            f"SnapTrade refused trading through the {brokerage} connection: no permission "
            "(error code 1066). A read-only connection cannot trade: reconnect it with "
            f"trading access {_reconnect_hint(authorization_id)}.",
            **details,
        )
    if error.code == "3003" or error.status == 402 or isinstance(error, ConnectionDisabled):
        return ConnectionDisabled(
            f"The {brokerage} connection is disabled at SnapTrade (error code 3003): "
            f"reconnect it {_reconnect_hint(authorization_id)}, then try again.",
            **details,
        )
    if error.status == 429 or isinstance(error, RateLimited):
        wait = (
            f"retry after {math.ceil(error.retry_after)} seconds"
            if error.retry_after is not None
            else "retry in a minute"
        )
        return RateLimited(
            f"SnapTrade is throttling requests (HTTP 429) for {brokerage}: {wait}.",
            retry_after=error.retry_after,
            **details,
        )
    if error.status == 410:
        return ProviderRejected(
            f"SnapTrade has retired the endpoint {error.endpoint} (HTTP 410 Gone): Brokerage "
            "Hub must move to its replacement. Nothing was traded.",
            **details,
        )
    if _is_expired_trade(error):
        return ProviderRejected(
            "The previewed trade expired at SnapTrade (a trade id is valid for 5 minutes): "
            "preview the order again. Nothing was placed.",
            **details,
        )
    message = (
        f"SnapTrade {endpoint} for {brokerage} failed (HTTP {error.status}, code {error.code})"
    )
    if error.message:
        message = f"{message}: {error.message}"
    return type(error)(message, retry_after=error.retry_after, **details)
