"""The types the position cache is read through: what a fetcher is, what a read serves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from core.errors import PROVIDER_DISPLAY_NAMES
from core.normalized import POSITION_FIELDS
from services.positions.fetchers import ProviderFetch
from services.positions.store import Snapshot
from services.webhooks import Freshness


class PositionFetcher(Protocol):
    def __call__(self, *, automatic: bool) -> ProviderFetch: ...


class SourceFreshnessReader(Protocol):
    """What webhooks said about each source (``services.webhooks.freshness``)."""

    def read(self, user_id: int, conn: Connection | None = None) -> list[Freshness]: ...

    def fetched(
        self,
        conn: Connection,
        user_id: int,
        provider: str,
        sources: Iterable[str],
        at: datetime,
        *,
        whole: bool,
    ) -> None: ...


@dataclass(frozen=True)
class CacheState:
    """Each provider's cache after a read made it as fresh as it could: what the read serves."""

    snapshots: dict[str, Snapshot]
    metadata: dict[str, dict[str, Any]]

    @property
    def generation_key(self) -> tuple[tuple[str, int], ...]:
        """Moves whenever any provider's rows may have changed, in any process."""
        return tuple(sorted((p, s.generation) for p, s in self.snapshots.items()))


@dataclass
class PositionsResult:
    """All providers' positions plus, per provider, where they came from and how old they are."""

    positions: list[dict[str, Any]]
    _cache_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cache_metadata(self) -> dict[str, dict[str, Any]]:
        return self._cache_metadata

    def to_dataframe(self) -> Any:
        import pandas as pd

        frame = pd.DataFrame(self.positions, columns=[*POSITION_FIELDS, "fetched_at"])
        frame.attrs["_cache_metadata"] = self._cache_metadata
        return frame


def disabled_metadata(provider: str) -> dict[str, Any]:
    """The cache entry of a disabled provider: nothing fetched, nothing served."""
    name = PROVIDER_DISPLAY_NAMES.get(provider, provider)
    return {
        "from_cache": False,
        "cache_age_hours": None,
        "ttl_hours": None,
        "fetched_at": None,
        "next_refresh_after": None,
        "stale": False,
        "error": None,
        "warning": None,
        "environment": "disabled",
        "disabled": True,
        "note": f"{name} is disabled here ({provider.upper()}_ENV=disabled): it is never "
        "called and positions stored from before are not shown",
    }
