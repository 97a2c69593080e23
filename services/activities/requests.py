"""Checking what a caller asks of the activity history, before anything is read or fetched:
each bad value is refused with what was wrong and what is allowed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.activities import ACTIVITY_TYPES
from core.errors import InvalidInput
from services.paging import PageSize, checked_limit

PAGE = PageSize(default=100, maximum=500)
EARLIEST = date(1970, 1, 1)
_TICKER = re.compile(r"[A-Za-z0-9.\-/: ]{1,20}")


@dataclass(frozen=True)
class ActivityFilter:
    start: date | None
    end: date | None
    types: tuple[str, ...]
    account_id: str | None
    ticker: str | None

    def key_tags(self) -> tuple[tuple[str, int], ...]:
        """The filter as part of a cursor's tag (a cursor of other filters is refused)."""
        text = "|".join(
            (
                str(self.start),
                str(self.end),
                ",".join(self.types),
                self.account_id or "",
                self.ticker or "",
            )
        )
        return ((f"filters:{text}", 0),)


def checked_date(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) <= 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None and day >= EARLIEST:
            return day
    raise InvalidInput(
        f"{name} {str(value)[:40]!r} is not a date: use YYYY-MM-DD, e.g. 2026-01-31",
        field=name,
    )


def checked_span(start: Any, end: Any) -> tuple[date | None, date | None]:
    first, last = checked_date(start, "start_date"), checked_date(end, "end_date")
    if first is not None and last is not None and first > last:
        raise InvalidInput(
            f"start_date {first.isoformat()} is after end_date {last.isoformat()}: "
            "the start must be on or before the end",
            field="start_date",
        )
    return first, last


def checked_types(value: Any) -> tuple[str, ...]:
    if value is None or value == "" or value == []:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
        parts = [str(value)]
    types = tuple(sorted({p.strip().lower() for p in parts if p.strip()}))
    unknown = [t for t in types if t not in ACTIVITY_TYPES]
    if unknown or len(types) > len(ACTIVITY_TYPES):
        raise InvalidInput(
            f"unknown activity type {unknown[0][:30] if unknown else str(value)[:30]!r}: "
            f"allowed values are {', '.join(ACTIVITY_TYPES)} (one, or several comma-separated)",
            field="type",
        )
    return types


def checked_text(value: Any, name: str, *, pattern: re.Pattern[str] | None = None) -> str | None:
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or len(value) > 100
        or not value.isprintable()  # no control characters (Postgres refuses NUL outright)
        or (pattern and not pattern.fullmatch(value))
    ):
        allowed = (
            "letters, digits and . - / : (at most 20)"
            if pattern
            else "at most 100 printable characters"
        )
        raise InvalidInput(
            f"{name} {str(value)[:40]!r} is not valid: {allowed}",
            field=name,
        )
    return value.strip()


def checked_filter(
    start_date: Any = None,
    end_date: Any = None,
    type: Any = None,
    account_id: Any = None,
    ticker: Any = None,
    limit: Any = None,
) -> tuple[ActivityFilter, int]:
    start, end = checked_span(start_date, end_date)
    wanted = ActivityFilter(
        start=start,
        end=end,
        types=checked_types(type),
        account_id=checked_text(account_id, "account_id"),
        ticker=(checked_text(ticker, "ticker", pattern=_TICKER) or "").upper() or None,
    )
    return wanted, checked_limit(limit, PAGE, "activities")
