"""Linking a brokerage through Plaid Hosted Link, advanced by whichever process is asked.

The person finishes Hosted Link on Plaid's page; we only learn that by asking
``/link/token/get``. Each link is a row (``plaid_link_sessions``): every poll of its
progress page, on any worker of any host, may advance it, and at most one
``/link/token/get`` per link per poll interval is sent, claimed in the database.
When the session has finished, one process claims the link (with a lease another
takes over if it dies), exchanges the public token, stores the access token at
``plaid/access_token/<email>/<institution-slug>`` and fetches holdings. No thread
outlives a request, and a worker restart in the middle of a link loses nothing.

Linking an institution that already has an Item is refused BEFORE the public token
is exchanged: two Items for one institution bill twice and can break each other's
logins (Plaid's "preventing duplicate Items"). The person is offered update mode for
the existing Item instead, which is also how an Item that needs a re-login
(ITEM_LOGIN_REQUIRED) is repaired.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core.errors import BrokerageHubError, InvalidInput, MalformedResponse, NotFound
from core.normalized import institution_display_name
from core.secret_names import plaid_token_name
from providers.plaid.items import institution_slug_of
from providers.plaid.linking import create_link_token, get_link_token, public_token_from_link
from services.clock import Clock
from services.connections import ConnectionRegistry, ProviderAccess
from services.linking.common import UrlForId, checked_web_url
from services.linking.link_store import (
    EXCHANGING,
    FAILED,
    FETCHING,
    WAITING,
    LinkStore,
    PlaidLinkJob,
)
from services.linking.plaid_link_finish import LinkFinisher
from services.positions import PositionService

log = logging.getLogger(__name__)

LINK_TIMEOUT_SECONDS = 300.0
DEFAULT_POLL_SECONDS = 10.0
# A process finishing a link (exchange, store, fetch holdings) holds it this long;
# past it, the next poll anywhere takes it over.
FINISH_LEASE = timedelta(seconds=90)


class PlaidLinkService:
    """Starts Hosted Link sessions and advances each when its progress is asked for."""

    def __init__(
        self,
        *,
        access: ProviderAccess,
        connections: ConnectionRegistry,
        positions: PositionService,
        store: LinkStore,
        clock: Clock,
        timeout_seconds: float = LINK_TIMEOUT_SECONDS,
        webhook_url: str | None = None,
    ) -> None:
        self._access = access
        self._webhook_url = webhook_url
        self._connections = connections
        self._store = store
        self._clock = clock
        self.timeout_seconds = timeout_seconds
        self._finisher = LinkFinisher(
            access=access, connections=connections, positions=positions, store=store
        )

    def linked_plaid_slugs(self) -> list[str]:
        return [institution_slug_of(name) for name in self._access.plaid_token_names()]

    # --- starting a link ------------------------------------------------------------------

    def start_plaid_link(
        self, *, completion_url: UrlForId | None = None, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> PlaidLinkJob:
        """Create a Hosted Link token for a new Item."""
        return self._start_job(
            "new",
            None,
            lambda redirect: create_link_token(
                self._access.plaid_client(),
                self._access.user_email,
                completion_redirect_uri=redirect,
                webhook=self._webhook_url,
            ),
            completion_url,
            poll_seconds,
        )

    def start_plaid_update(
        self,
        slug: str,
        *,
        completion_url: UrlForId | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> PlaidLinkJob:
        """Link update mode for an existing Item (a re-login, or a refused duplicate)."""
        secret_name = plaid_token_name(self._access.user_email, slug)  # validates the slug
        if not self._access.secret_store.exists(secret_name):
            raise NotFound(f"no Plaid Item is linked for {slug!r}")
        access_token = self._access.secret_store.get(secret_name)
        return self._start_job(
            "update",
            slug,
            lambda redirect: create_link_token(
                self._access.plaid_client(),
                self._access.user_email,
                access_token=access_token,
                completion_redirect_uri=redirect,
                webhook=self._webhook_url,
            ),
            completion_url,
            poll_seconds,
        )

    def _start_job(
        self,
        mode: str,
        slug: str | None,
        create_token: Callable[[str | None], dict[str, Any]],
        completion_url: UrlForId | None,
        poll_seconds: float,
    ) -> PlaidLinkJob:
        if isinstance(poll_seconds, bool) or not poll_seconds > 0:
            raise InvalidInput("poll_seconds must be a positive number", field="poll_seconds")
        job_id = secrets.token_urlsafe(16)
        created = create_token(completion_url(job_id) if completion_url else None)
        link_token = str(created.get("link_token") or "")
        hosted_link_url = checked_web_url(created.get("hosted_link_url"), "hosted_link_url")
        if not link_token:
            raise MalformedResponse(
                "Plaid /link/token/create answered without a link_token",
                provider="plaid",
                endpoint="/link/token/create",
            )
        now = self._clock()
        name = (
            (self._known_institution_name(slug) or institution_display_name(slug)) if slug else None
        )
        job = PlaidLinkJob(
            job_id=job_id,
            mode=mode,
            hosted_link_url=hosted_link_url,
            link_token=link_token,
            status=WAITING,
            message=(
                f"Waiting for you to log in to {name} again in Plaid."
                if name
                else "Waiting for you to finish Plaid Link."
            ),
            institution_name=name,
            institution_slug=slug,
            poll_seconds=float(poll_seconds),
            next_poll_at=now,
            claimed_until=None,
            expires_at=now + timedelta(seconds=self.timeout_seconds),
            created_at=now,
        )
        self._store.add_job(job)
        return job

    # --- advancing a link -----------------------------------------------------------------

    def plaid_job(self, job_id: object) -> PlaidLinkJob:
        """The link's progress, advanced first if a step is due (any process may do it)."""
        return self.advance(job_id)

    def advance(self, job_id: object) -> PlaidLinkJob:
        job = self._store.job(job_id)
        if job.finished:
            return job
        try:
            self._advance(job)
        except BrokerageHubError as exc:
            self._store.set_job(job, status=FAILED, message=exc.message, claimed_until=None)
        except Exception:
            log.exception("Plaid link %s failed", job.job_id)
            self._store.set_job(
                job,
                status=FAILED,
                message="internal error while linking; see the server log",
                claimed_until=None,
            )
        return job

    def _advance(self, job: PlaidLinkJob) -> None:
        now = self._clock()
        if job.status in (EXCHANGING, FETCHING):
            # Another process is finishing it; take over only if it stopped doing so.
            if self._store.claim_finish(job, now, now + FINISH_LEASE, job.status):
                self._finisher.take_over(job)
            return
        if now >= job.expires_at:
            self._store.set_job(
                job,
                status=FAILED,
                message=(
                    f"Plaid Link was not completed within {self.timeout_seconds:g} s; "
                    "start linking again"
                ),
            )
            return
        if not self._store.claim_poll(job, now, now + timedelta(seconds=job.poll_seconds)):
            return  # not due yet, or another process is asking Plaid right now
        link = get_link_token(job.link_token, self._access.plaid_client())
        if job.mode == "update":
            if _update_finished(link) and self._store.claim_finish(
                job, now, now + FINISH_LEASE, FETCHING
            ):
                self._finisher.finish_update(job)
            return
        public_token = public_token_from_link(link)
        if public_token and self._store.claim_finish(job, now, now + FINISH_LEASE, EXCHANGING):
            self._finisher.finish_new_item(job, link, public_token)

    def mark_session_finished(self, link_token: str) -> None:
        """Plaid says the session finished (a webhook): advance its link now."""
        for job_id in self._store.jobs_of_link_token(link_token):
            job = self._store.job(job_id)
            if job.status == WAITING:
                self._store.set_job(job, next_poll_at=self._clock())
                self.advance(job_id)

    def finish_from_webhook(self, link_token: str, public_tokens: list[str]) -> None:
        """Plaid's SESSION_FINISHED: finish the link with the public token it carries, with
        no further ``/link/token/get`` (claimed, so a poll elsewhere does not finish it too)."""
        for job_id in self._store.jobs_of_link_token(link_token):
            job = self._store.job(job_id)
            if job.status != WAITING:
                continue
            now = self._clock()
            try:
                if job.mode == "update":
                    if self._store.claim_finish(job, now, now + FINISH_LEASE, FETCHING):
                        self._finisher.finish_update(job)
                elif public_tokens and self._store.claim_finish(
                    job, now, now + FINISH_LEASE, EXCHANGING
                ):
                    self._finisher.finish_new_item(job, {}, public_tokens[0])
            except BrokerageHubError as exc:
                self._store.set_job(job, status=FAILED, message=exc.message, claimed_until=None)

    def wait_for_job(
        self, job_id: str, timeout: float, *, sleep: Callable[[float], None] = time.sleep
    ) -> PlaidLinkJob:
        """Advance the link until it finishes or ``timeout`` passes (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        job = self.advance(job_id)
        while not job.finished and time.monotonic() < deadline:
            sleep(min(job.poll_seconds, max(0.0, deadline - time.monotonic())))
            job = self.advance(job_id)
        return job

    def _known_institution_name(self, slug: str) -> str | None:
        state = self._connections.get(self._access.user_email, "plaid", slug)
        return state.institution_name if state else None


def _update_finished(link: dict[str, Any]) -> bool:
    """Update mode makes no new public token: a finished, successful session says it is done."""
    return any(
        session.get("on_success") or (session.get("finished_at") and not session.get("exit"))
        for session in link.get("link_sessions") or []
    )
