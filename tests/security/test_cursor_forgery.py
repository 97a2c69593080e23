"""A cursor carries no secret (its format, its generation tag and an offset, in base64 JSON),
so a caller can forge one with any field. A forged offset is refused like any bad cursor,
before a page is cut: positions and activities alike."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from core.errors import InvalidInput


def with_offset(cursor: str, offset: Any) -> str:
    """``cursor`` with its format and generation kept and its offset replaced."""
    fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert set(fields) == {"w", "g", "o"}, fields
    raw = json.dumps({**fields, "o": offset}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


FORGED_OFFSETS = [-1, -1_000_000, "3", True]


@pytest.mark.parametrize("offset", FORGED_OFFSETS)
def test_a_positions_cursor_with_a_forged_offset_is_refused(services: Any, offset: Any) -> None:
    first = services.position_views.answer("full", limit=1)
    assert first["truncated"] is True
    with pytest.raises(InvalidInput) as refused:
        services.position_views.answer(
            "full", limit=1, cursor=with_offset(first["next_cursor"], offset)
        )
    assert refused.value.field == "cursor"
    # The genuine cursor still pages on.
    assert services.position_views.answer("full", limit=1, cursor=first["next_cursor"])["positions"]


@pytest.mark.parametrize("offset", FORGED_OFFSETS)
def test_an_activities_cursor_with_a_forged_offset_is_refused(services: Any, offset: Any) -> None:
    first = services.activities.activities(limit=1)
    assert first["next_cursor"]
    with pytest.raises(InvalidInput) as refused:
        services.activities.activities(limit=1, cursor=with_offset(first["next_cursor"], offset))
    assert refused.value.field == "cursor"
    assert services.activities.activities(limit=1, cursor=first["next_cursor"])["activities"]
