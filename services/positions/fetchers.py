"""Fetch all of one provider's positions for the user, Item by Item or account by account.

A failure of one Plaid Item or one SnapTrade connection does not lose the
others: the fetch reports it per institution, and the position cache keeps
that institution's previous rows. A connection that needs the person's repair
(re-login, disabled) is not called by automatic refreshes at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import (
    BrokerageHubError,
    ConnectionDisabled,
    LoginRequired,
    ProviderError,
    SecretStoreError,
)
from core.normalized import NormalizedPosition, institution_display_name
from providers.plaid.holdings import fetch_plaid_holdings, normalize_item
from providers.plaid.items import institution_slug_of
from providers.snaptrade.accounts import (
    authorization_id_of,
    fetch_snaptrade_account,
    list_user_accounts,
)
from providers.snaptrade.holdings import normalize_snaptrade_holdings
from services.clock import Clock
from services.connections import ConnectionRegistry, ProviderAccess

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PARALLEL_SOURCES = 4


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
    # which answered: Plaid institution slugs, SnapTrade account ids
    fetched_sources: set[str] = field(default_factory=set)


def _as_provider_error(provider: str, error: BrokerageHubError) -> ProviderError:
    if isinstance(error, ProviderError):
        return error
    return ProviderError(error.message, provider=provider)


@dataclass
class _SourceOutcome:
    """One Item's or one account's answer: rows, or why there are none."""

    institution: str
    rows: list[NormalizedPosition] | None = None
    error: BrokerageHubError | None = None
    account_id: str | None = None  # set for a per-account source (SnapTrade)
    source: str | None = None  # the Item's slug or the account's id


def _gather(provider: str, outcomes: list[_SourceOutcome]) -> ProviderFetch:
    result = ProviderFetch(positions=[])
    for outcome in outcomes:
        if outcome.rows is not None:
            result.sources += 1
            if outcome.source:
                result.fetched_sources.add(outcome.source)
            result.positions.extend(outcome.rows)
            continue
        assert outcome.error is not None
        result.failures[outcome.institution] = outcome.error
        if outcome.account_id:
            result.keep_accounts.add(outcome.account_id)
        else:
            result.keep_institutions.add(outcome.institution)
    if result.sources == 0 and result.failures:
        raise _as_provider_error(provider, next(iter(result.failures.values())))
    return result


def _in_parallel(work: Callable[[T], _SourceOutcome], items: list[T]) -> list[_SourceOutcome]:
    # Items and accounts are independent and each call waits on the network:
    # a refresh takes as long as the slowest source, not the sum of all.
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_SOURCES, len(items))) as pool:
        return list(pool.map(work, items))


class _Fetcher:
    provider: str

    def __init__(
        self, access: ProviderAccess, connections: ConnectionRegistry, clock: Clock
    ) -> None:
        self._access = access
        self._connections = connections
        self._clock = clock


class PlaidPositionsFetcher(_Fetcher):
    provider = "plaid"

    def __call__(
        self, *, automatic: bool, only: set[str] | None = None, skip: set[str] | None = None
    ) -> ProviderFetch:
        """Every Item, or with ``only`` just those, less those in ``skip`` (institution
        slugs): the others keep their rows."""
        names = self._access.plaid_token_names()
        if not names:
            return ProviderFetch(positions=[])
        skipped = [
            n
            for n in names
            if (only is not None and institution_slug_of(n) not in only)
            or institution_slug_of(n) in (skip or ())
        ]
        client = self._access.plaid_client()
        fetch = _gather(
            self.provider,
            _in_parallel(
                lambda name: self._fetch_item(client, name, automatic),
                [n for n in names if n not in skipped],
            ),
        )
        fetch.keep_institutions |= {self._institution_of(institution_slug_of(n)) for n in skipped}
        return fetch

    def _institution_of(self, slug: str) -> str:
        state = self._connections.get(self._access.user_email, self.provider, slug)
        return (state and state.institution_name) or institution_display_name(slug)

    def _fetch_item(self, client: Any, secret_name: str, automatic: bool) -> _SourceOutcome:
        email = self._access.user_email
        slug = institution_slug_of(secret_name)
        state = self._connections.get(email, self.provider, slug)
        institution = (state and state.institution_name) or institution_display_name(slug)
        if automatic and state is not None and state.needs_repair:
            return _SourceOutcome(
                institution,
                error=LoginRequired(
                    f"{institution} needs the person to log in again through Plaid Link; "
                    "automatic refreshes skip it until then",
                    provider=self.provider,
                    code="ITEM_LOGIN_REQUIRED",
                ),
            )
        try:
            raw = fetch_plaid_holdings(self._access.plaid_token(secret_name), client, subject=slug)
            rows = normalize_item(raw, user_email=email, institution_slug=slug, at=self._clock())
        except ProviderError as exc:
            self._connections.record_error(
                email,
                self.provider,
                slug,
                exc,
                institution_name=institution,
                institution_slug=slug,
            )
            return _SourceOutcome(institution, error=exc)
        except SecretStoreError as exc:
            return _SourceOutcome(institution, error=exc)
        self._connections.record(
            email,
            self.provider,
            slug,
            status="ok",
            institution_name=rows[0].institution if rows else institution,
            institution_slug=slug,
            synced=True,
            # Webhooks name the Item by its item_id.
            item_id=str(raw["item"].get("item_id") or "") or None,
        )
        return _SourceOutcome(institution, rows=rows, source=slug)


class SnapTradePositionsFetcher(_Fetcher):
    provider = "snaptrade"

    def __call__(
        self, *, automatic: bool, only: set[str] | None = None, skip: set[str] | None = None
    ) -> ProviderFetch:
        """Every account, or with ``only`` just those, less those in ``skip`` (account ids):
        the others keep their rows (the account list is asked for either way: it is how a
        new one shows up)."""
        secret = self._access.snaptrade_user_secret()
        if secret is None:
            return ProviderFetch(positions=[])
        client = self._access.snaptrade_client()
        accounts = list_user_accounts(client, self._access.user_email, secret)
        wanted = [
            a
            for a in accounts
            if (only is None or str(a.get("id")) in only) and str(a.get("id")) not in (skip or ())
        ]
        fetch = _gather(
            self.provider,
            _in_parallel(
                lambda account: self._fetch_account(client, secret, account, automatic), wanted
            ),
        )
        fetch.keep_accounts |= {str(a.get("id")) for a in accounts if a not in wanted}
        return fetch

    def _fetch_account(
        self, client: Any, secret: str, account: dict[str, Any], automatic: bool
    ) -> _SourceOutcome:
        email = self._access.user_email
        institution = str(account.get("institution_name") or "Unknown")
        account_id = str(account.get("id"))
        authorization_id = authorization_id_of(account)
        state = (
            self._connections.get(email, self.provider, authorization_id)
            if authorization_id
            else None
        )
        if automatic and state is not None and state.needs_repair:
            return _SourceOutcome(
                institution,
                account_id=account_id,
                error=ConnectionDisabled(
                    f"The {institution} connection is disabled at SnapTrade; automatic "
                    "refreshes skip it until it is reconnected",
                    provider=self.provider,
                    code="3003",
                ),
            )
        try:
            raw = fetch_snaptrade_account(client, email, secret, account)
        except ProviderError as exc:
            if authorization_id:
                self._connections.record_error(
                    email, self.provider, authorization_id, exc, institution_name=institution
                )
            return _SourceOutcome(institution, account_id=account_id, error=exc)
        if authorization_id:
            self._connections.record(
                email,
                self.provider,
                authorization_id,
                status="ok",
                institution_name=institution,
                synced=True,
            )
        rows = normalize_snaptrade_holdings(
            {"accounts": [raw]}, user_email=email, fetched_at=self._clock()
        )
        return _SourceOutcome(institution, rows=rows, account_id=account_id, source=account_id)
