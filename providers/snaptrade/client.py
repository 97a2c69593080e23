"""The SnapTrade SDK client, and the wrapper every SnapTrade call goes through.

The SDK has no timeout of its own (a hung call would hang the tool) and lets
urllib3 retry on its own; the client made here has a timeout on every request,
records each in the call ledger and carries our bounded retry policy.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from core.errors import InvalidInput, MalformedResponse
from core.redaction import register_secret
from providers.calls import (
    CallSink,
    RetryPolicy,
    attach_retry_policy,
    call_with_retry,
    instrument_rest_client,
    retry_policy_of,
)
from providers.snaptrade.errors import PROVIDER, map_snaptrade_error

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

T = TypeVar("T")


def make_snaptrade_client(
    host: str,
    client_id: str,
    consumer_key: str,
    *,
    timeout_seconds: float = 20.0,
    sink: CallSink | None = None,
    retry_policy: RetryPolicy | None = None,
) -> SnapTrade:
    """A SnapTrade client with a timeout on every request (the SDK has none) and a ledger."""
    from snaptrade_client import SnapTrade, SnapTradeAuth  # loads on first use, not at start-up
    from snaptrade_client.rest import RESTClientObject

    # A provider error may echo the key back: mask it wherever our text shows it.
    register_secret(consumer_key)
    client = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key=consumer_key, client_id=client_id),
        host=host,
    )
    # The SDK logs a warning on every list_user_accounts call (deprecated, still
    # served, and the call our health check is specified to use).
    logging.getLogger("snaptrade_client").setLevel(logging.ERROR)
    api_client = client.account_information.api_client  # shared by every tag API
    # urllib3 would otherwise retry reads on its own, multiplying our bounded retries.
    api_client.configuration.retries = False  # type: ignore[assignment]
    api_client.rest_client = RESTClientObject(api_client.configuration)
    instrument_rest_client(
        api_client.rest_client,
        provider=PROVIDER,
        base_path=urlsplit(host).path.rstrip("/"),
        timeout_kwarg="timeout",
        timeout=(min(5.0, timeout_seconds), timeout_seconds),
        sink=sink,
    )
    attach_retry_policy(client, retry_policy or RetryPolicy())
    return client


def require_snaptrade_client(client: Any, parameter: str = "client") -> SnapTrade:
    """Refuse a wrong object at once, before any retry could mistake it for an outage."""
    from snaptrade_client import SnapTrade

    if not isinstance(client, SnapTrade):
        raise InvalidInput(
            f"{parameter} must be a SnapTrade client (snaptrade_client.SnapTrade, e.g. "
            f"build_services().snaptrade_client()), not {type(client).__name__}",
            field=parameter,
        )
    return client


def snaptrade_call(endpoint: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator for a function ``(client, ..., user_secret=...)`` that makes one SnapTrade call.

    It registers the user secret for redaction as it enters, checks the client,
    maps SnapTrade's errors once (naming ``endpoint``), and retries 429, 5xx and
    network failures by the client's policy.
    """

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            bound = signature.bind_partial(*args, **kwargs).arguments
            # The user secret enters here: register it before SnapTrade can echo it.
            register_secret(bound.get("user_secret"))
            client = require_snaptrade_client(bound.get("client"))

            def attempt() -> T:
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    raise map_snaptrade_error(exc, endpoint) from exc

            return call_with_retry(attempt, retry_policy_of(client))

        return wrapper

    return decorate


def body(response: Any, endpoint: str, expected: type) -> Any:
    """The decoded JSON of an SDK answer, which must be of the ``expected`` type."""
    value = getattr(response, "body", None)
    if not isinstance(value, expected):
        raise MalformedResponse(
            f"SnapTrade answered {endpoint} with {type(value).__name__}, "
            f"expected {expected.__name__}",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return value


def with_ids(items: list[Any], endpoint: str, what: str) -> list[dict[str, Any]]:
    """Every element must be an object with an id: nothing else can be asked about it."""
    if not all(isinstance(item, dict) and item.get("id") for item in items):
        raise MalformedResponse(
            f"SnapTrade answered {endpoint} with {what} without an id",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return items
