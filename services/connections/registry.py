"""Last known state of every Plaid Item and SnapTrade authorization.

Error codes that mean a state change (Plaid ITEM_LOGIN_REQUIRED, a disabled
SnapTrade connection) are written here before the error is raised on, so that
automatic refreshes stop calling a connection until the person repairs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from core.errors import ConnectionDisabled, ItemNotFound, LoginRequired, ProviderError
from services.models import ProviderConnection
from services.storage import ensure_user, user_id_for

NEEDS_REPAIR = ("login_required", "disabled")


@dataclass(frozen=True)
class ConnectionState:
    provider: str
    external_id: str
    institution_name: str | None
    institution_slug: str | None
    connection_type: str | None
    status: str
    last_synced_at: datetime | None
    last_error: str | None

    @property
    def needs_repair(self) -> bool:
        return self.status in NEEDS_REPAIR


def status_for_error(error: ProviderError) -> str:
    if isinstance(error, LoginRequired):
        return "login_required"
    if isinstance(error, ConnectionDisabled):
        return "disabled"
    if isinstance(error, ItemNotFound):
        return "removed"
    return "error"


_STATE_COLUMNS = (
    ProviderConnection.provider,
    ProviderConnection.external_id,
    ProviderConnection.institution_name,
    ProviderConnection.institution_slug,
    ProviderConnection.connection_type,
    ProviderConnection.status,
    ProviderConnection.last_synced_at,
    ProviderConnection.last_error,
)


# Built once: a warm positions read lists the connections, and building the statement
# each time would cost more than running it.
_STATES_OF_USER = (
    select(*_STATE_COLUMNS)
    .where(ProviderConnection.user_id == bindparam("user_id"))
    .order_by(ProviderConnection.id)
)


class ConnectionRegistry:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock
        # A user's id never changes once the row exists: every read reuses it.
        self._user_ids: dict[str, int] = {}

    def _known_user_id(self, email: str) -> int | None:
        user_id = self._user_ids.get(email)
        if user_id is None:
            user_id = user_id_for(self._engine, email)
            if user_id is not None:
                self._user_ids[email] = user_id
        return user_id

    def _user_id(self, email: str) -> int:
        user_id = self._known_user_id(email)
        if user_id is None:
            ensure_user(self._engine, email, self._clock)
            user_id = self._known_user_id(email)
        assert user_id is not None
        return user_id

    def record(
        self,
        user_email: str,
        provider: str,
        external_id: str,
        *,
        status: str,
        institution_name: str | None = None,
        institution_slug: str | None = None,
        connection_type: str | None = None,
        error: str | None = None,
        synced: bool = False,
        item_id: str | None = None,
    ) -> None:
        """Upsert one connection's state (a success clears its last error)."""
        user_id = self._user_id(user_email)
        now = self._clock()
        values: dict[str, object] = {"status": status, "updated_at": now, "last_error": error}
        if institution_name:
            values["institution_name"] = institution_name
        if institution_slug:
            values["institution_slug"] = institution_slug
        if connection_type:
            values["connection_type"] = connection_type
        if item_id:
            values["item_id"] = item_id
        if synced:
            values["last_synced_at"] = now
        key = (
            (ProviderConnection.user_id == user_id)
            & (ProviderConnection.provider == provider)
            & (ProviderConnection.external_id == external_id)
        )
        with self._engine.begin() as conn:
            changed = conn.execute(update(ProviderConnection).where(key).values(**values))
            if changed.rowcount == 0:
                conn.execute(
                    insert(ProviderConnection).values(
                        user_id=user_id, provider=provider, external_id=external_id, **values
                    )
                )

    def record_error(
        self,
        user_email: str,
        provider: str,
        external_id: str,
        error: ProviderError,
        **details: str | None,
    ) -> None:
        self.record(
            user_email,
            provider,
            external_id,
            status=status_for_error(error),
            error=error.message,
            **details,  # type: ignore[arg-type]
        )

    def list(
        self, user_email: str, provider: str | None = None, *, conn: Connection | None = None
    ) -> list[ConnectionState]:
        """The user's connections as last seen (on ``conn`` when the caller has one open)."""
        user_id = self._known_user_id(user_email)
        if user_id is None:
            return []
        if conn is not None:
            rows = conn.execute(_STATES_OF_USER, {"user_id": user_id}).all()
        else:
            with self._engine.connect() as own:
                rows = own.execute(_STATES_OF_USER, {"user_id": user_id}).all()
        return [
            ConnectionState(*row) for row in rows if provider is None or row.provider == provider
        ]

    def get(self, user_email: str, provider: str, external_id: str) -> ConnectionState | None:
        for state in self.list(user_email, provider):
            if state.external_id == external_id:
                return state
        return None

    def owner_of_item(self, item_id: str) -> tuple[str, str] | None:
        """Whose Plaid Item ``item_id`` is: (user email, institution slug), if known here."""
        from services.models import User

        with self._engine.connect() as conn:
            row = conn.execute(
                select(User.email, ProviderConnection.external_id)
                .join(User, User.id == ProviderConnection.user_id)
                .where(
                    ProviderConnection.provider == "plaid",
                    ProviderConnection.item_id == item_id,
                )
                .limit(1)
            ).first()
        return (row[0], row[1]) if row else None

    def note_item_id(self, user_email: str, institution_slug: str, item_id: str) -> None:
        """Record which Plaid Item a linked institution is, keeping its state: its webhooks
        name the Item by this id, and only a known Item's webhook may cost a key lookup."""
        user_id = self._user_id(user_email)
        with self._engine.begin() as conn:
            updated = conn.execute(
                update(ProviderConnection)
                .where(
                    ProviderConnection.user_id == user_id,
                    ProviderConnection.provider == "plaid",
                    ProviderConnection.external_id == institution_slug,
                )
                .values(item_id=item_id)
            ).rowcount
        if not updated:
            self.record(user_email, "plaid", institution_slug, status="ok", item_id=item_id)
