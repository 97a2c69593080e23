"""Time, injected: every service takes a clock, so tests move time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import overload

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC one: SQLite hands back naive UTC times, Postgres aware."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
