"""The provider SDK clients, made on first use from plain endpoints.

The composition root hands this module where each provider answers and with which
app credentials (the real services, or the emulator on the embedded default); it
never learns which. Clients are made once per process and shared by every service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import ProviderDisabled
from providers.calls import CallSink, RetryPolicy
from providers.plaid.client import make_plaid_client
from providers.snaptrade.client import make_snaptrade_client
from settings import PLAID_HOSTS, SNAPTRADE_HOSTS, Settings


@dataclass(frozen=True)
class ProviderEndpoint:
    """Where one provider answers, and the app credentials it takes there."""

    host: str
    client_id: str
    secret: str = field(repr=False)


class ProviderClients:
    """The Plaid and SnapTrade clients of this process, made on first use."""

    def __init__(
        self,
        resolve: Callable[[str], ProviderEndpoint | None],
        *,
        timeout_seconds: float,
        ledger: CallSink,
        retry_policy: RetryPolicy,
    ) -> None:
        # resolve(provider) -> its endpoint, or None when the provider is disabled.
        self._resolve = resolve
        self._timeout_seconds = timeout_seconds
        self._ledger = ledger
        self.retry_policy = retry_policy
        self._lock = threading.Lock()
        self._made: dict[str, Any] = {}

    def plaid(self) -> Any:
        return self._client("plaid", make_plaid_client)

    def snaptrade(self) -> Any:
        return self._client("snaptrade", make_snaptrade_client)

    def _client(self, provider: str, make: Callable[..., Any]) -> Any:
        with self._lock:
            if provider not in self._made:
                endpoint = self._resolve(provider)
                if endpoint is None:
                    raise ProviderDisabled(provider)
                self._made[provider] = make(
                    endpoint.host,
                    endpoint.client_id,
                    endpoint.secret,
                    timeout_seconds=self._timeout_seconds,
                    sink=self._ledger,
                    retry_policy=self.retry_policy,
                )
            return self._made[provider]


def endpoint_for(
    settings: Settings, provider: str, embedded: Callable[[], Any]
) -> ProviderEndpoint | None:
    """Where ``provider`` answers; None when it is disabled. ``embedded()`` is the emulator
    of the embedded default, asked for only when the provider is emulated."""
    if provider == "plaid":
        env, host = settings.plaid_env, settings.plaid_base_url
        client_id, secret = settings.plaid_client_id, settings.plaid_secret
        hosts = PLAID_HOSTS
    else:
        env, host = settings.snaptrade_env, settings.snaptrade_base_url
        client_id, secret = settings.snaptrade_client_id, settings.snaptrade_consumer_key
        hosts = SNAPTRADE_HOSTS
    if env == "disabled":
        return None
    if env == "emulator":
        endpoint: ProviderEndpoint = embedded().endpoint(
            provider, host=host, client_id=client_id, secret=secret
        )
        return endpoint
    return ProviderEndpoint(host or hosts[env], client_id, secret)
