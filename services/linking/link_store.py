"""Plaid link sessions and SnapTrade portal flows in the database.

Any worker on any host serves the next request of a link another one started: the
rows are the only state. Claims are single UPDATE statements, so two processes
cannot both poll Plaid in one interval or both finish one link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from core.errors import NotFound
from services.clock import Clock, as_utc
from services.linking.common import KEEP_FOR
from services.models import PlaidLinkSession, SnapTradePortalFlow
from services.storage import ensure_user, user_id_for

WAITING = "waiting"
EXCHANGING = "exchanging"
FETCHING = "fetching"
DONE = "done"
DUPLICATE = "duplicate"
FAILED = "failed"
FINISHED_STATES = (DONE, DUPLICATE, FAILED)
UNKNOWN_LINK = "unknown or expired Plaid link; start linking again"
UNKNOWN_FLOW = "unknown or already used SnapTrade connection link"


@dataclass
class PlaidLinkJob:
    """One Hosted Link session being waited for; what the progress page shows."""

    job_id: str
    mode: str  # "new" or "update"
    hosted_link_url: str
    link_token: str
    status: str
    message: str
    institution_name: str | None
    institution_slug: str | None
    poll_seconds: float
    next_poll_at: datetime
    claimed_until: datetime | None
    expires_at: datetime
    created_at: datetime

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
            "poll_seconds": self.poll_seconds,
        }


_JOB_FIELDS = [f.name for f in fields(PlaidLinkJob)]


@dataclass(frozen=True)
class PortalFlow:
    """One trip through the SnapTrade connection portal, until the redirect back."""

    flow_id: str
    connection_type: str
    reconnect: str | None
    portal_url: str
    connections_before: dict[str, dict[str, Any]]
    status: str
    created_at: datetime


class LinkStore:
    """One person's link sessions and portal flows."""

    def __init__(self, engine: Engine, user_email: str, clock: Clock) -> None:
        self._engine = engine
        self._user_email = user_email
        self._clock = clock
        self._known_user_id: int | None = None

    def _user_id(self) -> int:
        if self._known_user_id is None:
            ensure_user(self._engine, self._user_email, self._clock)
            self._known_user_id = user_id_for(self._engine, self._user_email)
        assert self._known_user_id is not None
        return self._known_user_id

    # --- Plaid link sessions ------------------------------------------------------------

    def add_job(self, job: PlaidLinkJob) -> None:
        values = {name: getattr(job, name) for name in _JOB_FIELDS}
        user_id = self._user_id()  # before the transaction: it may write the user row itself
        with self._engine.begin() as conn:
            self._forget_old(conn)
            conn.execute(
                insert(PlaidLinkSession).values(user_id=user_id, updated_at=self._clock(), **values)
            )

    def job(self, job_id: object) -> PlaidLinkJob:
        if not isinstance(job_id, str) or len(job_id) > 43:
            raise NotFound(UNKNOWN_LINK)
        columns = [getattr(PlaidLinkSession, name) for name in _JOB_FIELDS]
        user_id = self._user_id()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*columns).where(
                    PlaidLinkSession.job_id == job_id, PlaidLinkSession.user_id == user_id
                )
            ).first()
        if row is None:
            raise NotFound(UNKNOWN_LINK)
        values = dict(zip(_JOB_FIELDS, row, strict=True))
        for name in ("next_poll_at", "claimed_until", "expires_at", "created_at"):
            values[name] = as_utc(values[name])
        return PlaidLinkJob(**values)

    def claim_poll(self, job: PlaidLinkJob, now: datetime, next_poll_at: datetime) -> bool:
        """Take this poll interval's one /link/token/get: True for exactly one process."""
        return self._claim(
            job.job_id,
            (PlaidLinkSession.status == WAITING, PlaidLinkSession.next_poll_at <= now),
            next_poll_at=next_poll_at,
        )

    def claim_finish(self, job: PlaidLinkJob, now: datetime, until: datetime, status: str) -> bool:
        """Take the job to finish it (or take it over from a process that died doing so)."""
        free = (PlaidLinkSession.claimed_until.is_(None)) | (PlaidLinkSession.claimed_until <= now)
        return self._claim(
            job.job_id,
            (PlaidLinkSession.status == job.status, free),
            status=status,
            claimed_until=until,
        )

    def set_job(self, job: PlaidLinkJob, **values: Any) -> None:
        for name, value in values.items():
            setattr(job, name, value)
        with self._engine.begin() as conn:
            conn.execute(
                update(PlaidLinkSession)
                .where(PlaidLinkSession.job_id == job.job_id)
                .values(updated_at=self._clock(), **values)
            )

    def jobs_of_link_token(self, link_token: str) -> list[str]:
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(PlaidLinkSession.job_id).where(PlaidLinkSession.link_token == link_token)
                ).scalars()
            )

    def _claim(self, job_id: str, conditions: tuple[Any, ...], **values: Any) -> bool:
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(PlaidLinkSession)
                .where(PlaidLinkSession.job_id == job_id, *conditions)
                .values(updated_at=self._clock(), **values)
            ).rowcount
        return claimed == 1

    # --- SnapTrade portal flows -----------------------------------------------------------

    def add_flow(self, flow: PortalFlow) -> None:
        user_id = self._user_id()  # before the transaction: it may write the user row itself
        with self._engine.begin() as conn:
            self._forget_old(conn)
            conn.execute(
                insert(SnapTradePortalFlow).values(
                    flow_id=flow.flow_id,
                    user_id=user_id,
                    connection_type=flow.connection_type,
                    reconnect=flow.reconnect,
                    portal_url=flow.portal_url,
                    connections_before=json.dumps(flow.connections_before),
                    status=flow.status,
                    created_at=flow.created_at,
                )
            )

    def flow(self, flow_id: object) -> PortalFlow:
        if not isinstance(flow_id, str) or len(flow_id) > 43:
            raise NotFound(UNKNOWN_FLOW)
        table = SnapTradePortalFlow
        user_id = self._user_id()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    table.flow_id,
                    table.connection_type,
                    table.reconnect,
                    table.portal_url,
                    table.connections_before,
                    table.status,
                    table.created_at,
                ).where(table.flow_id == flow_id, table.user_id == user_id)
            ).first()
        if row is None or as_utc(row.created_at) <= self._clock() - KEEP_FOR:  # type: ignore[operator]
            raise NotFound(UNKNOWN_FLOW)
        return PortalFlow(
            flow_id=row.flow_id,
            connection_type=row.connection_type,
            reconnect=row.reconnect,
            portal_url=row.portal_url,
            connections_before=json.loads(row.connections_before),
            status=row.status,
            created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        )

    def claim_return(self, flow_id: str) -> bool:
        """The person came back: True for exactly one request (a reload is not a second)."""
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(SnapTradePortalFlow)
                .where(SnapTradePortalFlow.flow_id == flow_id, SnapTradePortalFlow.status == "open")
                .values(status="returned")
            ).rowcount
        return claimed == 1

    # --- housekeeping -----------------------------------------------------------------------

    def _forget_old(self, conn: Any) -> None:
        forget_old_links(conn, self._clock())


def forget_old_links(conn: Connection, now: datetime) -> dict[str, int]:
    """Finished and abandoned links and flows (every user's) older than KEEP_FOR are deleted;
    returns how many of each."""
    cutoff = now - KEEP_FOR
    sessions = conn.execute(delete(PlaidLinkSession).where(PlaidLinkSession.created_at <= cutoff))
    flows = conn.execute(
        delete(SnapTradePortalFlow).where(SnapTradePortalFlow.created_at <= cutoff)
    )
    return {
        "plaid_link_sessions": int(sessions.rowcount or 0),
        "snaptrade_portal_flows": int(flows.rowcount or 0),
    }
