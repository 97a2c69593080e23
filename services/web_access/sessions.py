"""Web sessions that end: kept in the database, checked on every request.

The browser holds a random session id (in the signed session cookie); the table
holds only its SHA-256, the user, when it began, when it was last used and the
user's auth epoch at login. A session ends when the person logs out, when it has
been idle too long, when it reaches its absolute lifetime, or when the user's
password changes (their epoch moves). Any worker on any host can check it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, delete, insert, or_, select, update

from services.clock import Clock, as_utc
from services.models import User, WebSession
from services.storage import ensure_user

# Writing "last seen" on every request would make every read a write; a minute of
# slack on a timeout of an hour or more is not worth that.
LAST_SEEN_GRANULARITY = timedelta(minutes=1)
MAX_SESSION_ID_LENGTH = 100

_SESSION_OF = (
    select(
        WebSession.id,
        WebSession.created_at,
        WebSession.last_seen_at,
        WebSession.auth_epoch,
        User.email,
        User.auth_epoch,
    )
    .join(User, User.id == WebSession.user_id)
    .where(WebSession.session_hash == bindparam("session_hash"))
)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class SessionRules:
    idle: timedelta
    lifetime: timedelta


class WebSessions:
    def __init__(self, engine: Engine, clock: Clock, rules: SessionRules) -> None:
        self._engine = engine
        self._clock = clock
        self.rules = rules

    def start(self, user_email: str) -> str:
        """A new session for the user; returns the id to put in the cookie (never stored)."""
        ensure_user(self._engine, user_email, self._clock)
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._engine.begin() as conn:
            user_id, epoch = conn.execute(
                select(User.id, User.auth_epoch).where(User.email == user_email)
            ).one()
            conn.execute(
                insert(WebSession).values(
                    session_hash=_hash(session_id),
                    user_id=user_id,
                    auth_epoch=epoch or 0,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            self._forget_ended(conn, now)
        return session_id

    def user_of(self, session_id: object) -> str | None:
        """The user a live session belongs to (and it counts as used now), else None."""
        if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID_LENGTH:
            return None
        now = self._clock()
        with self._engine.connect() as conn:
            row = conn.execute(_SESSION_OF, {"session_hash": _hash(session_id)}).first()
        if row is None:
            return None
        key, created_at, last_seen_at, session_epoch, email, user_epoch = row
        created_at, last_seen_at = as_utc(created_at), as_utc(last_seen_at)
        if (
            session_epoch != (user_epoch or 0)
            or now - last_seen_at >= self.rules.idle
            or now - created_at >= self.rules.lifetime
        ):
            self._end_by_key(key)
            return None
        if now - last_seen_at >= LAST_SEEN_GRANULARITY:
            with self._engine.begin() as conn:
                conn.execute(
                    update(WebSession).where(WebSession.id == key).values(last_seen_at=now)
                )
        return str(email)

    def end(self, session_id: object) -> None:
        """Log this session out (an unknown id is already out)."""
        if isinstance(session_id, str) and 0 < len(session_id) <= MAX_SESSION_ID_LENGTH:
            with self._engine.begin() as conn:
                conn.execute(delete(WebSession).where(WebSession.session_hash == _hash(session_id)))

    def end_all(self, user_email: str) -> None:
        """End every session of the user (a new password): their epoch moves, rows go."""
        with self._engine.begin() as conn:
            user_id = conn.execute(select(User.id).where(User.email == user_email)).scalar()
            if user_id is None:
                return
            conn.execute(
                update(User).where(User.id == user_id).values(auth_epoch=User.auth_epoch + 1)
            )
            conn.execute(delete(WebSession).where(WebSession.user_id == user_id))

    def _end_by_key(self, key: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(WebSession).where(WebSession.id == key))

    def forget_ended(self) -> int:
        """Delete the rows of sessions that ended by time (the scheduler's clean-up);
        returns how many."""
        with self._engine.begin() as conn:
            return self._forget_ended(conn, self._clock())

    def _forget_ended(self, conn: Connection, now: datetime) -> int:
        """Rows of sessions that ended by time: gone, so the table stays small."""
        result = conn.execute(
            delete(WebSession).where(
                or_(
                    WebSession.last_seen_at <= now - self.rules.idle,
                    WebSession.created_at <= now - self.rules.lifetime,
                )
            )
        )
        return int(result.rowcount or 0)
