"""Linking a brokerage through Plaid Hosted Link, as a background job.

The person finishes Hosted Link on Plaid's page; we only learn that by polling
``/link/token/get``, for up to 5 minutes. A web request cannot wait that long, so
each link runs as a job on its own thread and the page polls the job's status. A
finished job has exchanged the public token, stored the access token at
``plaid/access_token/<email>/<institution-slug>`` and fetched holdings.

Linking an institution that already has an Item is refused BEFORE the public
token is exchanged: two Items for one institution bill twice and can break each
other's logins (Plaid's "preventing duplicate Items"). The person is offered
update mode for the existing Item instead, which is also how an Item that needs
a re-login (ITEM_LOGIN_REQUIRED) is repaired.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import (
    BrokerageHubError,
    InvalidInput,
    MalformedResponse,
    NotFound,
    ProviderTimeout,
)
from core.normalized import institution_display_name, institution_slug
from core.redaction import register_secret
from core.secret_names import plaid_token_name
from providers.plaid.items import get_plaid_item, institution_slug_of, remove_plaid_connection
from providers.plaid.linking import (
    create_link_token,
    exchange_public_token,
    get_link_token,
    wait_for_public_token,
)
from services.clock import Clock
from services.connections import ConnectionRegistry
from services.linking.common import KEEP_FOR, UrlForId, checked_web_url
from services.position_service import PositionService
from services.provider_access import ProviderAccess

log = logging.getLogger(__name__)

LINK_TIMEOUT_SECONDS = 300.0
DEFAULT_POLL_SECONDS = 10.0

# Job states, in the order a successful job passes through them.
WAITING = "waiting"
EXCHANGING = "exchanging"
FETCHING = "fetching"
DONE = "done"
DUPLICATE = "duplicate"
FAILED = "failed"
FINISHED_STATES = (DONE, DUPLICATE, FAILED)


@dataclass
class PlaidLinkJob:
    """One Hosted Link session being waited for; what the progress page shows."""

    job_id: str
    mode: str  # "new" or "update"
    hosted_link_url: str
    created_at: datetime
    link_token: str = field(repr=False)
    status: str = WAITING
    message: str = "Waiting for you to finish Plaid Link."
    institution_name: str | None = None
    institution_slug: str | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES

    def to_dict(self) -> dict[str, Any]:
        """The public view of the job (no link token except inside the Hosted Link URL)."""
        return {
            "job_id": self.job_id,
            "mode": self.mode,
            "status": self.status,
            "finished": self.finished,
            "message": self.message,
            "institution": self.institution_name,
            "institution_slug": self.institution_slug,
            "hosted_link_url": self.hosted_link_url,
        }


class PlaidLinkService:
    """Starts Hosted Link sessions and finishes them in the background, one job each."""

    def __init__(
        self,
        *,
        access: ProviderAccess,
        connections: ConnectionRegistry,
        positions: PositionService,
        clock: Clock,
        timeout_seconds: float = LINK_TIMEOUT_SECONDS,
    ) -> None:
        self._access = access
        self._connections = connections
        self._positions = positions
        self._clock = clock
        self.timeout_seconds = timeout_seconds
        self._jobs: dict[str, PlaidLinkJob] = {}
        self._lock = threading.Lock()

    def linked_plaid_slugs(self) -> list[str]:
        names = self._access.plaid_token_names()
        return [institution_slug_of(name) for name in names]

    def start_plaid_link(
        self, *, completion_url: UrlForId | None = None, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> PlaidLinkJob:
        """Create a Hosted Link token for a new Item and wait for it in the background."""
        return self._start_job(
            "new",
            None,
            lambda redirect: create_link_token(
                self._access.plaid_client(),
                self._access.user_email,
                completion_redirect_uri=redirect,
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
        if not poll_seconds > 0:
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
        job = PlaidLinkJob(
            job_id=job_id,
            mode=mode,
            hosted_link_url=hosted_link_url,
            created_at=self._clock(),
            link_token=link_token,
            institution_slug=slug,
        )
        if slug:
            job.institution_name = self._known_institution_name(slug) or (
                institution_display_name(slug)
            )
            job.message = f"Waiting for you to log in to {job.institution_name} again in Plaid."
        thread = threading.Thread(
            target=self._run_job,
            args=(job, poll_seconds),
            name=f"plaid-link-{job_id[:8]}",
            daemon=True,
        )
        job._thread = thread
        with self._lock:
            self._forget_old()
            self._jobs[job_id] = job
        thread.start()
        return job

    # --- Plaid: the job ---------------------------------------------------------------

    def plaid_job(self, job_id: str) -> PlaidLinkJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound("unknown or expired Plaid link; start linking again")
        return job

    def wait_for_job(self, job_id: str, timeout: float) -> PlaidLinkJob:
        """Block until the job has finished (or ``timeout`` passed): for tests and the CLI."""
        job = self.plaid_job(job_id)
        if job._thread is not None:
            job._thread.join(timeout)
        return job

    def _run_job(self, job: PlaidLinkJob, poll_seconds: float) -> None:
        try:
            if job.mode == "update":
                self._finish_update(job, poll_seconds)
            else:
                self._finish_new_item(job, poll_seconds)
        except BrokerageHubError as exc:
            self._set(job, FAILED, exc.message)
        except Exception:
            log.exception("Plaid link job %s failed", job.job_id)
            self._set(job, FAILED, "internal error while linking; see the server log")

    def _finish_new_item(self, job: PlaidLinkJob, poll_seconds: float) -> None:
        client = self._access.plaid_client()
        public_token = wait_for_public_token(
            job.link_token, timeout=self.timeout_seconds, poll=poll_seconds, client=client
        )
        register_secret(public_token)
        name = self._institution_of_session(job.link_token, public_token)
        if name and self._refuse_duplicate(job, name):
            # The public token is never exchanged, so no second access token exists.
            return
        self._set(job, EXCHANGING, "Plaid Link finished; saving the connection.")
        access_token, item_id = exchange_public_token(public_token, client)
        register_secret(access_token)
        if not name:
            item = get_plaid_item(access_token, client).get("item") or {}
            name = str(item.get("institution_name") or item.get("institution_id") or item_id)
            if self._refuse_duplicate(job, name):
                self._remove_unwanted_item(access_token, job)
                return
        slug = institution_slug(name)
        job.institution_name, job.institution_slug = name, slug
        self._store_access_token(slug, access_token)
        self._connections.record(
            self._access.user_email,
            "plaid",
            slug,
            status="ok",
            institution_name=name,
            institution_slug=slug,
        )
        self._fetch_plaid_positions(job, f"{name} is linked")

    def _finish_update(self, job: PlaidLinkJob, poll_seconds: float) -> None:
        self._wait_for_finished_session(job.link_token, poll_seconds)
        assert job.institution_slug is not None
        # Update mode keeps the Item and its access token: only its state changes.
        self._connections.record(
            self._access.user_email,
            "plaid",
            job.institution_slug,
            status="ok",
            institution_slug=job.institution_slug,
        )
        self._fetch_plaid_positions(job, f"{job.institution_name} is connected again")

    def _fetch_plaid_positions(self, job: PlaidLinkJob, linked: str) -> None:
        self._set(job, FETCHING, f"{linked}; fetching holdings.")
        try:
            self._positions.refresh_provider_positions("plaid")
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            self._set(
                job,
                DONE,
                f"{linked}, but fetching holdings failed ({message}); "
                "they will be fetched on the next refresh.",
            )
            return
        self._set(job, DONE, f"{linked}; its holdings are on the positions page.")

    def _refuse_duplicate(self, job: PlaidLinkJob, name: str) -> bool:
        slug = institution_slug(name)
        if slug not in self.linked_plaid_slugs():
            return False
        job.institution_name, job.institution_slug = name, slug
        self._set(
            job,
            DUPLICATE,
            f"{name} is already linked through Plaid. A second Item would be billed twice and "
            "can break the first one's login, so it was not added. To repair or refresh the "
            "existing connection, use update mode.",
        )
        return True

    def _remove_unwanted_item(self, access_token: str, job: PlaidLinkJob) -> None:

        try:
            remove_plaid_connection(access_token, self._access.plaid_client())
        except BrokerageHubError as exc:
            # Nothing else can remove it later: the token is not stored anywhere.
            log.error("could not remove the duplicate Plaid Item for %s: %s", job.job_id, exc)
            job.message += f" Removing the duplicate Item at Plaid failed: {exc.message}"

    def _institution_of_session(self, link_token: str, public_token: str) -> str | None:
        """The institution a finished Link session connected (from ``/link/token/get``)."""

        link = get_link_token(link_token, self._access.plaid_client())
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

    def _wait_for_finished_session(
        self,
        link_token: str,
        poll_seconds: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Update mode makes no new public token: wait for a finished Link session instead."""

        deadline = monotonic() + self.timeout_seconds
        client = self._access.plaid_client()
        while True:
            link = get_link_token(link_token, client)
            for session in link.get("link_sessions") or []:
                if session.get("on_success") or (
                    session.get("finished_at") and not session.get("exit")
                ):
                    return
            if monotonic() + poll_seconds > deadline:
                raise ProviderTimeout(
                    f"Plaid Link was not completed within {self.timeout_seconds:g} s",
                    provider="plaid",
                    endpoint="/link/token/get",
                )
            sleep(poll_seconds)

    def _store_access_token(self, slug: str, access_token: str) -> None:
        self._access.secret_store.put(plaid_token_name(self._access.user_email, slug), access_token)

    def _known_institution_name(self, slug: str) -> str | None:
        state = self._connections.get(self._access.user_email, "plaid", slug)
        return state.institution_name if state else None

    def _set(self, job: PlaidLinkJob, status: str, message: str) -> None:
        with self._lock:
            job.status, job.message = status, message
        log.info("Plaid link job %s: %s", job.job_id, status)

    def _forget_old(self) -> None:
        """Drop finished jobs older than KEEP_FOR (caller holds the lock)."""
        cutoff = self._clock() - KEEP_FOR
        for job_id, job in list(self._jobs.items()):
            if job.finished and job.created_at < cutoff:
                del self._jobs[job_id]
