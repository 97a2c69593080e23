"""The Plaid SDK client: a timeout on every request, a line in the call ledger, our retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.errors import InvalidInput
from core.redaction import register_secret
from providers.calls import (
    CallSink,
    RetryPolicy,
    attach_retry_policy,
    call_with_retry,
    instrument_rest_client,
    ledger_subject,
    retry_policy_of,
)
from providers.plaid.errors import PROVIDER, map_plaid_error

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi


def make_plaid_client(
    host: str,
    client_id: str,
    secret: str,
    *,
    timeout_seconds: float = 20.0,
    sink: CallSink | None = None,
    retry_policy: RetryPolicy | None = None,
) -> PlaidApi:
    """A Plaid client whose every request has a timeout and is recorded in the ledger."""
    import plaid  # the SDK loads on first use: the MCP server answers tools/list before it
    from plaid.api import plaid_api

    # A provider error may echo the secret back: mask it wherever our text shows it.
    register_secret(secret)
    configuration = plaid.Configuration(
        host=host, api_key={"clientId": client_id, "secret": secret}
    )
    # urllib3 would otherwise retry reads on its own, multiplying our bounded retries.
    configuration.retries = False
    api_client = plaid.ApiClient(configuration)
    instrument_rest_client(
        api_client.rest_client,
        provider=PROVIDER,
        base_path=urlsplit(host).path.rstrip("/"),
        timeout_kwarg="_request_timeout",
        timeout=(min(5.0, timeout_seconds), timeout_seconds),
        sink=sink,
    )
    client = plaid_api.PlaidApi(api_client)
    attach_retry_policy(client, retry_policy or RetryPolicy())
    return client


def require_plaid_client(client: Any, parameter: str = "client") -> PlaidApi:
    """Refuse a wrong object at once, before any retry could mistake it for an outage."""
    from plaid.api.plaid_api import PlaidApi

    if not isinstance(client, PlaidApi):
        raise InvalidInput(
            f"{parameter} must be a Plaid client (plaid.api.plaid_api.PlaidApi, e.g. "
            f"build_services().plaid_client()), not {type(client).__name__}",
            field=parameter,
        )
    return client


def call(
    client: PlaidApi,
    endpoint: str,
    operation: Callable[[], Any],
    *,
    subject: str | None = None,
) -> Any:
    """One Plaid operation: mapped errors, the client's bounded retries, the ledger subject."""
    require_plaid_client(client)

    def attempt() -> Any:
        try:
            return operation()
        except Exception as exc:
            raise map_plaid_error(exc, endpoint) from exc

    with ledger_subject(subject):
        return call_with_retry(attempt, retry_policy_of(client))


def to_plain(value: Any) -> Any:
    """Plaid model objects to JSON-like values (dates stay dates)."""
    if hasattr(value, "to_dict"):
        return to_plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "value") and type(value).__module__.startswith("plaid"):
        return value.value
    return value
