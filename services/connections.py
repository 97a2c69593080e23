"""Last known state of every Plaid Item and SnapTrade authorization.

Error codes that mean a state change (Plaid ITEM_LOGIN_REQUIRED, a disabled
SnapTrade connection) are written here before the error is raised on, so that
automatic refreshes stop calling a connection until the person repairs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from core.errors import ConnectionDisabled, ItemNotFound, LoginRequired, ProviderError
from services.models import ProviderConnection
from services.users import ensure_user, user_id_for

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


class ConnectionRegistry:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def _user_id(self, email: str) -> int:
        user_id = user_id_for(self._engine, email)
        if user_id is None:
            ensure_user(self._engine, email, self._clock)
            user_id = user_id_for(self._engine, email)
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

    def list(self, user_email: str, provider: str | None = None) -> list[ConnectionState]:
        user_id = user_id_for(self._engine, user_email)
        if user_id is None:
            return []
        table = ProviderConnection.__table__
        query = select(table).where(table.c.user_id == user_id)
        if provider:
            query = query.where(table.c.provider == provider)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.id)).mappings().all()
        return [
            ConnectionState(
                provider=row["provider"],
                external_id=row["external_id"],
                institution_name=row["institution_name"],
                institution_slug=row["institution_slug"],
                connection_type=row["connection_type"],
                status=row["status"],
                last_synced_at=row["last_synced_at"],
                last_error=row["last_error"],
            )
            for row in rows
        ]

    def get(self, user_email: str, provider: str, external_id: str) -> ConnectionState | None:
        for state in self.list(user_email, provider):
            if state.external_id == external_id:
                return state
        return None
