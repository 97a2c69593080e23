"""Fetch all of one provider's positions for the user, Item by Item or account by account.

A failure of one Plaid Item or one SnapTrade connection does not lose the
others: the fetch reports it per institution, and the position cache keeps
that institution's previous rows. A connection that needs the person's repair
(re-login, disabled) is not called by automatic refreshes at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.errors import (
    BrokerageHubError,
    ConnectionDisabled,
    LoginRequired,
    ProviderError,
    SecretStoreError,
)
from services.normalized import NormalizedPosition, institution_display_name

if TYPE_CHECKING:
    from services.composition import Services

log = logging.getLogger(__name__)


@dataclass
class ProviderFetch:
    positions: list[NormalizedPosition]
    # institution name -> why its fresh rows are missing
    failures: dict[str, BrokerageHubError] = field(default_factory=dict)
    # whose previous rows the cache keeps because they could not be fetched now
    keep_institutions: set[str] = field(default_factory=set)
    keep_accounts: set[str] = field(default_factory=set)
    # how many Items / accounts answered
    sources: int = 0


def _as_provider_error(provider: str, error: BrokerageHubError) -> ProviderError:
    if isinstance(error, ProviderError):
        return error
    return ProviderError(error.message, provider=provider)


class PlaidPositionsFetcher:
    provider = "plaid"

    def __init__(self, services: Services) -> None:
        self._services = services

    def __call__(self, *, automatic: bool) -> ProviderFetch:
        from plaid_loader import institution_slug_of, list_user_tokens, load_plaid_positions

        services = self._services
        email = services.user_email
        store = services.secret_store
        names = list_user_tokens(email, store=store)
        result = ProviderFetch(positions=[])
        if not names:
            return result
        client = services.plaid_client()
        for name in names:
            slug = institution_slug_of(name)
            state = services.connections.get(email, self.provider, slug)
            institution = (state and state.institution_name) or institution_display_name(slug)
            if automatic and state is not None and state.needs_repair:
                result.keep_institutions.add(institution)
                result.failures[institution] = LoginRequired(
                    f"{institution} needs the person to log in again through Plaid Link; "
                    "automatic refreshes skip it until then",
                    provider=self.provider,
                    code="ITEM_LOGIN_REQUIRED",
                )
                continue
            try:
                token = store.get(name)
                rows = load_plaid_positions(
                    token,
                    client,
                    user_email=email,
                    institution_slug=slug,
                    fetched_at=services.clock(),
                )
            except ProviderError as exc:
                services.connections.record_error(
                    email, self.provider, slug, exc, institution_name=institution,
                    institution_slug=slug,
                )
                result.failures[institution] = exc
                result.keep_institutions.add(institution)
                continue
            except SecretStoreError as exc:
                result.keep_institutions.add(institution)
                result.failures[institution] = exc
                continue
            result.sources += 1
            result.positions.extend(rows)
            services.connections.record(
                email,
                self.provider,
                slug,
                status="ok",
                institution_name=rows[0].institution if rows else institution,
                institution_slug=slug,
                synced=True,
            )
        if result.sources == 0 and result.failures:
            raise _as_provider_error(self.provider, next(iter(result.failures.values())))
        return result


class SnapTradePositionsFetcher:
    provider = "snaptrade"

    def __init__(self, services: Services) -> None:
        self._services = services

    def __call__(self, *, automatic: bool) -> ProviderFetch:
        from services.secret_store import snaptrade_user_secret_name
        from snaptrade_loader import (
            _list_user_accounts_with_retry,
            authorization_id_of,
            fetch_snaptrade_account,
            normalize_snaptrade_holdings,
        )

        services = self._services
        email = services.user_email
        secret_name = snaptrade_user_secret_name(email)
        if not services.secret_store.exists(secret_name):
            return ProviderFetch(positions=[])
        secret = services.secret_store.get(secret_name)
        client = services.snaptrade_client()
        accounts = _list_user_accounts_with_retry(client, email, secret)
        result = ProviderFetch(positions=[])
        for account in accounts:
            institution = str(account.get("institution_name") or "Unknown")
            authorization_id = authorization_id_of(account)
            state = (
                services.connections.get(email, self.provider, authorization_id)
                if authorization_id
                else None
            )
            account_id = str(account.get("id"))
            if automatic and state is not None and state.needs_repair:
                result.keep_accounts.add(account_id)
                result.failures[institution] = ConnectionDisabled(
                    f"The {institution} connection is disabled at SnapTrade; automatic "
                    "refreshes skip it until it is reconnected",
                    provider=self.provider,
                    code="3003",
                )
                continue
            try:
                raw = fetch_snaptrade_account(client, email, secret, account)
            except ProviderError as exc:
                if authorization_id:
                    services.connections.record_error(
                        email, self.provider, authorization_id, exc, institution_name=institution
                    )
                result.keep_accounts.add(account_id)
                result.failures[institution] = exc
                continue
            result.sources += 1
            result.positions.extend(
                normalize_snaptrade_holdings(
                    {"accounts": [raw]}, user_email=email, fetched_at=services.clock()
                )
            )
            if authorization_id:
                services.connections.record(
                    email,
                    self.provider,
                    authorization_id,
                    status="ok",
                    institution_name=institution,
                    synced=True,
                )
        if result.sources == 0 and result.failures:
            raise _as_provider_error(self.provider, next(iter(result.failures.values())))
        return result
