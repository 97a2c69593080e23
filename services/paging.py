"""Pages of a long answer, and the cursor that names where the next page starts.

A cursor is opaque to the caller but carries no secret: the format it belongs to,
the offset of the next row, and a tag of the cache generation it was cut from. A
page from another generation would repeat or skip rows, so such a cursor is
refused and the caller starts again.

A cursor comes back from outside (a query string, a tool argument, a command line), so
every field is checked before it is used: exactly the three fields we write, the offset a
whole number no larger than ``MAX_OFFSET`` (an offset of 2**63 would otherwise reach the
database and overflow its integer), the tag a short hex string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput
from core.untrusted_json import loads_untrusted

MAX_CURSOR_LENGTH = 200
# Far beyond any real history or portfolio, far below any database integer's range.
MAX_OFFSET = 10**9
_FIELDS = frozenset({"w", "g", "o"})
_TAG = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class PageSize:
    default: int
    maximum: int


def generation_tag(key: tuple[tuple[str, int], ...]) -> str:
    """A short name of a cache generation (which rows a page was cut from)."""
    text = "|".join(f"{name}:{generation}" for name, generation in key)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checked_limit(limit: Any, size: PageSize, what: str) -> int:
    if limit is None:
        return size.default
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= size.maximum:
        raise InvalidInput(
            f"limit {str(limit)[:40]!r} is not valid for {what}: a whole number from 1 to "
            f"{size.maximum} (default {size.default})",
            field="limit",
        )
    return limit


def _encode(fields: dict[str, Any]) -> str:
    raw = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = loads_untrusted(raw, max_bytes=MAX_CURSOR_LENGTH, max_depth=1)
    except (binascii.Error, ValueError):
        return None
    return fields if isinstance(fields, dict) else None


def _well_formed(fields: dict[str, Any] | None, what: str) -> bool:
    if fields is None or set(fields) != _FIELDS or fields["w"] != what:
        return False
    offset, tag = fields["o"], fields["g"]
    return (
        isinstance(offset, int)
        and not isinstance(offset, bool)
        and 0 <= offset <= MAX_OFFSET
        and isinstance(tag, str)
        and _TAG.fullmatch(tag) is not None
    )


def cursor_fields(cursor: Any, *, what: str) -> dict[str, Any] | None:
    """A cursor's fields when it is one of ``what`` (None for no cursor); refuses anything
    else. Cheap, so a caller checks it before doing any work for the request."""
    if cursor is None:
        return None
    fields = (
        _decode(cursor) if isinstance(cursor, str) and len(cursor) <= MAX_CURSOR_LENGTH else None
    )
    if not _well_formed(fields, what):
        shown = str(cursor)[:40]
        raise InvalidInput(
            f"cursor {shown!r} is not a cursor of {what}: pass the next_cursor of the previous "
            "page unchanged, or leave it out to start at the first page",
            field="cursor",
        )
    return fields


def cursor_offset(
    cursor: Any, *, what: str, tag: str, changed: str = "positions that have changed since"
) -> int:
    """The offset a cursor points at; refuses a malformed cursor, or one of another generation."""
    fields = cursor_fields(cursor, what=what)
    if fields is None:
        return 0
    if fields.get("g") != tag:
        raise InvalidInput(
            f"this cursor was cut from {changed} (they were refreshed): start again from the "
            "first page, without a cursor",
            field="cursor",
        )
    return int(fields["o"])


def page(
    rows: Sequence[dict[str, Any]], *, offset: int, limit: int, what: str, tag: str
) -> dict[str, Any]:
    """One page of ``rows`` with the fields a client pages by: total, truncated, next_cursor."""
    return {"positions": list(rows[offset : offset + limit])} | page_fields(
        len(rows), offset=offset, limit=limit, what=what, tag=tag
    )


def page_fields(total: int, *, offset: int, limit: int, what: str, tag: str) -> dict[str, Any]:
    """What a page says about the rest, for rows the database already cut to one page."""
    end = offset + limit
    more = end < total
    return {
        "total": total,
        "limit": limit,
        "truncated": more,
        "next_cursor": _encode({"w": what, "g": tag, "o": end}) if more else None,
    }
