"""Finishing a Plaid link once its Hosted Link session is done: refuse a duplicate, exchange
the public token, store the access token, fetch holdings. Run by the one process that
claimed the link."""

from __future__ import annotations

import logging
from typing import Any

from core.errors import BrokerageHubError, InvalidInput
from core.normalized import institution_slug
from core.redaction import register_secret
from core.secret_names import plaid_token_name
from providers.plaid.items import get_plaid_item, institution_slug_of, remove_plaid_connection
from providers.plaid.linking import exchange_public_token, get_link_token, public_token_from_link
from services.connections import ConnectionRegistry, ProviderAccess
from services.linking.link_store import (
    DONE,
    DUPLICATE,
    EXCHANGING,
    FAILED,
    FETCHING,
    LinkStore,
    PlaidLinkJob,
)
from services.positions import PositionService

log = logging.getLogger(__name__)


class LinkFinisher:
    def __init__(
        self,
        *,
        access: ProviderAccess,
        connections: ConnectionRegistry,
        positions: PositionService,
        store: LinkStore,
    ) -> None:
        self._access = access
        self._connections = connections
        self._positions = positions
        self._store = store

    def finish_new_item(self, job: PlaidLinkJob, link: dict[str, Any], public_token: str) -> None:
        register_secret(public_token)
        client = self._access.plaid_client()
        name = _institution_of_session(link, public_token)
        if name and self._refuse_duplicate(job, name):
            # The public token is never exchanged, so no second access token exists.
            return
        self._store.set_job(job, message="Plaid Link finished; saving the connection.")
        access_token, item_id = exchange_public_token(public_token, client)
        if not name:
            item = get_plaid_item(access_token, client).get("item") or {}
            name = str(item.get("institution_name") or item.get("institution_id") or item_id)
            if self._refuse_duplicate(job, name):
                self._remove_unwanted_item(access_token, job)
                return
        slug = institution_slug(name)
        # Stored before anything else can fail: the Item is billed from this moment on.
        self._access.secret_store.put(plaid_token_name(self._access.user_email, slug), access_token)
        self._store.set_job(job, institution_name=name, institution_slug=slug)
        self._connections.record(
            self._access.user_email,
            "plaid",
            slug,
            status="ok",
            institution_name=name,
            institution_slug=slug,
            item_id=item_id,
        )
        self._fetch_plaid_positions(job, f"{name} is linked")

    def finish_update(self, job: PlaidLinkJob) -> None:
        if job.institution_slug is None:
            raise InvalidInput("an update-mode link names its institution")
        # Update mode keeps the Item and its access token: only its state changes.
        self._connections.record(
            self._access.user_email,
            "plaid",
            job.institution_slug,
            status="ok",
            institution_slug=job.institution_slug,
        )
        self._fetch_plaid_positions(job, f"{job.institution_name} is connected again")

    def take_over(self, job: PlaidLinkJob) -> None:
        """The process that claimed this link stopped (a restart): carry on where it was."""
        linked = job.institution_slug is not None and (
            job.institution_slug
            in {institution_slug_of(n) for n in self._access.plaid_token_names()}
        )
        if job.status == FETCHING or (job.status == EXCHANGING and linked):
            verb = "is connected again" if job.mode == "update" else "is linked"
            self._fetch_plaid_positions(job, f"{job.institution_name} {verb}")
            return
        # It stopped before the access token was stored: the public token is the only way on.
        link = get_link_token(job.link_token, self._access.plaid_client())
        public_token = public_token_from_link(link)
        if public_token is None:
            self._store.set_job(
                job, status=FAILED, message="Plaid Link did not finish; start linking again"
            )
            return
        self.finish_new_item(job, link, public_token)

    def _fetch_plaid_positions(self, job: PlaidLinkJob, linked: str) -> None:
        self._store.set_job(job, status=FETCHING, message=f"{linked}; fetching holdings.")
        try:
            self._positions.refresh_provider_positions("plaid")
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            self._store.set_job(
                job,
                status=DONE,
                claimed_until=None,
                message=f"{linked}, but fetching holdings failed ({message}); "
                "they will be fetched on the next refresh.",
            )
            return
        self._store.set_job(
            job,
            status=DONE,
            claimed_until=None,
            message=f"{linked}; its holdings are on the positions page.",
        )

    def _refuse_duplicate(self, job: PlaidLinkJob, name: str) -> bool:
        slug = institution_slug(name)
        if slug not in {institution_slug_of(n) for n in self._access.plaid_token_names()}:
            return False
        self._store.set_job(
            job,
            status=DUPLICATE,
            claimed_until=None,
            institution_name=name,
            institution_slug=slug,
            message=f"{name} is already linked through Plaid. A second Item would be billed "
            "twice and can break the first one's login, so it was not added. To repair or "
            "refresh the existing connection, use update mode.",
        )
        return True

    def _remove_unwanted_item(self, access_token: str, job: PlaidLinkJob) -> None:
        try:
            remove_plaid_connection(access_token, self._access.plaid_client())
        except BrokerageHubError as exc:
            # Nothing else can remove it later: the token is not stored anywhere.
            log.error("could not remove the duplicate Plaid Item for %s: %s", job.job_id, exc)
            self._store.set_job(
                job,
                message=f"{job.message} Removing the duplicate Item at Plaid failed: {exc.message}",
            )


def _institution_of_session(link: dict[str, Any], public_token: str) -> str | None:
    """The institution a finished Link session connected (from ``/link/token/get``)."""
    for session in link.get("link_sessions") or []:
        results = (session.get("results") or {}).get("item_add_results") or []
        for result in results:
            if result.get("public_token") == public_token:
                name = (result.get("institution") or {}).get("name")
                return str(name) if name else None
        success = session.get("on_success") or {}
        if success.get("public_token") == public_token:
            name = ((success.get("metadata") or {}).get("institution") or {}).get("name")
            return str(name) if name else None
    return None
