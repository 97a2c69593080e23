"""One person's way to the providers: the SDK clients and their credentials in the secret store."""

from __future__ import annotations

from typing import Any, Protocol

from core.errors import SecretNotFound, SecretScheduledForDeletion
from core.secret_names import snaptrade_user_secret_name
from core.secret_store import SecretStore
from providers.plaid.items import get_plaid_token, list_user_tokens


class ClientSource(Protocol):
    """Makes (once) and hands out the SDK clients: ``services.composition.clients``."""

    def plaid(self) -> Any: ...

    def snaptrade(self) -> Any: ...


class ProviderAccess:
    """What a service needs to call a provider for the person, and nothing more."""

    def __init__(self, user_email: str, secret_store: SecretStore, clients: ClientSource) -> None:
        self.user_email = user_email
        self.secret_store = secret_store
        self._clients = clients

    def plaid_client(self) -> Any:
        return self._clients.plaid()

    def snaptrade_client(self) -> Any:
        return self._clients.snaptrade()

    def plaid_token_names(self) -> list[str]:
        """The secret names of the person's Plaid Items (one per institution), sorted."""
        return list_user_tokens(self.user_email, self.secret_store)

    def plaid_token(self, secret_name: str) -> str:
        return get_plaid_token(secret_name, self.secret_store)

    def snaptrade_user_secret(self) -> str | None:
        """The person's SnapTrade user secret; None when they are not (or no longer) registered."""
        try:
            return self.secret_store.get(snaptrade_user_secret_name(self.user_email))
        except (SecretNotFound, SecretScheduledForDeletion):
            return None
