"""Linking brokerages: Plaid Hosted Link as a background job, the SnapTrade connection portal.

Plaid: the person finishes Hosted Link on Plaid's page; we only learn that by
polling ``/link/token/get``, for up to 5 minutes. A web request cannot wait
that long, so each link runs as a job on its own thread and the page polls the
job's status. A finished job has exchanged the public token, stored the access
token at ``plaid/access_token/<email>/<institution-slug>`` and fetched holdings.

Linking an institution that already has an Item is refused BEFORE the public
token is exchanged: two Items for one institution bill twice and can break each
other's logins (Plaid's "preventing duplicate Items"). The person is offered
update mode for the existing Item instead, which is also how an Item that
needs a re-login (ITEM_LOGIN_REQUIRED) is repaired.

SnapTrade: the person is registered on first use (the user secret goes to
``snaptrade/user_secret/<email>``), sent to the connection portal, and comes
back to our redirect URL, where SnapTrade positions are fetched. Reconnecting
(a disabled connection, or read -> trade) is the portal with
``reconnect=<authorization id>``.

Jobs and portal flows live in memory: the web app is one process for one person,
and an interrupted link is simply started again.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from services.errors import (
    BrokerageHubError,
    InvalidInput,
    MalformedResponse,
    NotFound,
    ProviderTimeout,
)
from services.normalized import institution_slug
from services.redaction import register_secret

if TYPE_CHECKING:
    from services.composition import Services

log = logging.getLogger(__name__)

LINK_TIMEOUT_SECONDS = 300.0
DEFAULT_POLL_SECONDS = 10.0
# Finished jobs and unused portal flows are forgotten after this long.
KEEP_FOR = timedelta(hours=1)
CONNECTION_TYPES = ("read", "trade")

# Job states, in the order a successful job passes through them.
WAITING = "waiting"
EXCHANGING = "exchanging"
FETCHING = "fetching"
DONE = "done"
DUPLICATE = "duplicate"
FAILED = "failed"
FINISHED_STATES = (DONE, DUPLICATE, FAILED)

UrlForId = Callable[[str], str]


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


@dataclass
class PortalFlow:
    """One trip through the SnapTrade connection portal, until the redirect back."""

    flow_id: str
    connection_type: str
    reconnect: str | None
    portal_url: str
    created_at: datetime


@dataclass(frozen=True)
class ConnectOutcome:
    ok: bool
    message: str


class LinkingService:
    def __init__(
        self,
        services: Services,
        *,
        timeout_seconds: float = LINK_TIMEOUT_SECONDS,
    ) -> None:
        self._services = services
        self.timeout_seconds = timeout_seconds
        self._jobs: dict[str, PlaidLinkJob] = {}
        self._flows: dict[str, PortalFlow] = {}
        self._lock = threading.Lock()
        self._register_lock = threading.Lock()

    # --- Plaid: starting a link -------------------------------------------------------

    def linked_plaid_slugs(self) -> list[str]:
        from plaid_loader import institution_slug_of, list_user_tokens

        services = self._services
        names = list_user_tokens(services.user_email, store=services.secret_store)
        return [institution_slug_of(name) for name in names]

    def start_plaid_link(
        self, *, completion_url: UrlForId | None = None, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> PlaidLinkJob:
        """Create a Hosted Link token for a new Item and wait for it in the background."""
        from plaid_loader import create_link_token

        return self._start_job(
            "new",
            None,
            lambda redirect: create_link_token(
                self._services.plaid_client(),
                self._services.user_email,
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
        from plaid_loader import create_link_token
        from services.secret_store import plaid_token_name

        services = self._services
        secret_name = plaid_token_name(services.user_email, slug)  # validates the slug
        if not services.secret_store.exists(secret_name):
            raise NotFound(f"no Plaid Item is linked for {slug!r}")
        access_token = services.secret_store.get(secret_name)
        return self._start_job(
            "update",
            slug,
            lambda redirect: create_link_token(
                services.plaid_client(),
                services.user_email,
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
        hosted_link_url = _checked_web_url(created.get("hosted_link_url"), "hosted_link_url")
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
            created_at=self._services.clock(),
            link_token=link_token,
            institution_slug=slug,
        )
        if slug:
            from services.normalized import institution_display_name

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
        from plaid_loader import exchange_public_token, get_plaid_item, wait_for_public_token

        services = self._services
        client = services.plaid_client()
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
        services.connections.record(
            services.user_email,
            "plaid",
            slug,
            status="ok",
            institution_name=name,
            institution_slug=slug,
        )
        self._fetch_plaid_positions(job, f"{name} is linked")

    def _finish_update(self, job: PlaidLinkJob, poll_seconds: float) -> None:
        services = self._services
        self._wait_for_finished_session(job.link_token, poll_seconds)
        assert job.institution_slug is not None
        # Update mode keeps the Item and its access token: only its state changes.
        services.connections.record(
            services.user_email,
            "plaid",
            job.institution_slug,
            status="ok",
            institution_slug=job.institution_slug,
        )
        self._fetch_plaid_positions(job, f"{job.institution_name} is connected again")

    def _fetch_plaid_positions(self, job: PlaidLinkJob, linked: str) -> None:
        self._set(job, FETCHING, f"{linked}; fetching holdings.")
        try:
            self._services.positions.refresh_provider_positions("plaid")
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
        from plaid_loader import remove_plaid_connection

        try:
            remove_plaid_connection(access_token, self._services.plaid_client())
        except BrokerageHubError as exc:
            # Nothing else can remove it later: the token is not stored anywhere.
            log.error("could not remove the duplicate Plaid Item for %s: %s", job.job_id, exc)
            job.message += f" Removing the duplicate Item at Plaid failed: {exc.message}"

    def _institution_of_session(self, link_token: str, public_token: str) -> str | None:
        """The institution a finished Link session connected (from ``/link/token/get``)."""
        from plaid_loader import get_link_token

        link = get_link_token(link_token, self._services.plaid_client())
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
        from plaid_loader import get_link_token

        deadline = monotonic() + self.timeout_seconds
        client = self._services.plaid_client()
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
        from services.secret_store import plaid_token_name

        services = self._services
        services.secret_store.put(plaid_token_name(services.user_email, slug), access_token)

    def _known_institution_name(self, slug: str) -> str | None:
        services = self._services
        state = services.connections.get(services.user_email, "plaid", slug)
        return state.institution_name if state else None

    def _set(self, job: PlaidLinkJob, status: str, message: str) -> None:
        with self._lock:
            job.status, job.message = status, message
        log.info("Plaid link job %s: %s", job.job_id, status)

    # --- SnapTrade: the connection portal ---------------------------------------------

    def snaptrade_user_secret(self, *, register: bool = False) -> str | None:
        """The stored user secret; with ``register`` the person is registered first if needed."""
        from services.secret_store import snaptrade_user_secret_name

        services = self._services
        name = snaptrade_user_secret_name(services.user_email)
        if services.secret_store.exists(name):
            return services.secret_store.get(name)
        if not register:
            return None
        from snaptrade_loader import register_snaptrade_user

        with self._register_lock:
            if services.secret_store.exists(name):
                return services.secret_store.get(name)
            secret = register_snaptrade_user(services.user_email, services.snaptrade_client())
            register_secret(secret)
            # SnapTrade shows the secret once: store it before anything else can fail.
            services.secret_store.put(name, secret)
            log.info("registered %s with SnapTrade", services.user_email)
            return secret

    def start_snaptrade_connection(
        self,
        connection_type: str,
        reconnect: str | None = None,
        *,
        return_url: UrlForId | None = None,
    ) -> PortalFlow:
        """Open the connection portal: a new connection, or ``reconnect`` an existing one.

        ``return_url(flow_id)`` is where the portal sends the person back.
        """
        from snaptrade_loader import login_snaptrade_user

        if connection_type not in CONNECTION_TYPES:
            raise InvalidInput(
                f"unknown connection_type {connection_type!r}: allowed values are read, trade",
                field="connection_type",
            )
        reconnect = _checked_authorization_id(reconnect)
        secret = self.snaptrade_user_secret(register=True)
        assert secret is not None
        flow_id = secrets.token_urlsafe(16)
        answer = login_snaptrade_user(
            self._services.snaptrade_client(),
            self._services.user_email,
            secret,
            connection_type=connection_type,
            reconnect=reconnect,
            custom_redirect=return_url(flow_id) if return_url else None,
        )
        flow = PortalFlow(
            flow_id=flow_id,
            connection_type=connection_type,
            reconnect=reconnect,
            portal_url=_checked_web_url(answer.get("redirectURI"), "redirectURI"),
            created_at=self._services.clock(),
        )
        with self._lock:
            self._forget_old()
            self._flows[flow_id] = flow
        return flow

    def snaptrade_flow(self, flow_id: str) -> PortalFlow:
        with self._lock:
            flow = self._flows.get(flow_id)
        if flow is None:
            raise NotFound("unknown or already used SnapTrade connection link")
        return flow

    def finish_snaptrade_connection(self, flow_id: str) -> ConnectOutcome:
        """The person is back from the portal: fetch SnapTrade positions now (once per flow)."""
        with self._lock:
            flow = self._flows.pop(flow_id, None)
        if flow is None:
            raise NotFound("unknown or already used SnapTrade connection link")
        done = "reconnected" if flow.reconnect else "connected"
        try:
            self._services.positions.refresh_provider_positions("snaptrade")
        except (BrokerageHubError, ValueError) as exc:
            message = exc.message if isinstance(exc, BrokerageHubError) else str(exc)
            return ConnectOutcome(
                False,
                f"SnapTrade {done}, but fetching positions failed ({message}). A new "
                "connection can take a few minutes to sync: refresh SnapTrade shortly.",
            )
        return ConnectOutcome(True, f"SnapTrade {done}; positions are up to date.")

    # --- housekeeping ------------------------------------------------------------------

    def _forget_old(self) -> None:
        """Drop finished jobs and unused flows older than KEEP_FOR (caller holds the lock)."""
        cutoff = self._services.clock() - KEEP_FOR
        for job_id, job in list(self._jobs.items()):
            if job.finished and job.created_at < cutoff:
                del self._jobs[job_id]
        for flow_id, flow in list(self._flows.items()):
            if flow.created_at < cutoff:
                del self._flows[flow_id]


def _checked_authorization_id(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidInput(
            "reconnect must be a SnapTrade authorization id (a UUID)", field="reconnect"
        ) from None


def _checked_web_url(value: Any, what: str) -> str:
    """A provider URL we send the person to must be http(s), never ``javascript:``."""
    url = str(value or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MalformedResponse(
            f"the provider's {what} is not a web address",
            provider="plaid" if what == "hosted_link_url" else "snaptrade",
        )
    return url
