"""Reading the stored activities: which rows count, a page of them, the rows of a span.

An institution synced through both providers is counted once, from the provider first in
``PROVIDER_PRIORITY`` (as positions are); a switched-off provider's rows are not shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, not_, select

from services.activities.requests import ActivityFilter
from services.activities.store import LISTED, SyncState
from services.models import ActivityRow

COLUMNS = (
    ActivityRow.trade_date,
    ActivityRow.type,
    ActivityRow.provider,
    ActivityRow.institution,
    ActivityRow.account_id,
    ActivityRow.account_name,
    ActivityRow.ticker,
    ActivityRow.security_id,
    ActivityRow.description,
    ActivityRow.quantity,
    ActivityRow.price,
    ActivityRow.amount,
    ActivityRow.fee,
    ActivityRow.currency,
    ActivityRow.activity_id,
)


def counted_once(
    syncs: Sequence[SyncState], priority: Sequence[str], enabled: Sequence[str]
) -> list[dict[str, str]]:
    """Institutions synced through more than one enabled provider, and the one counted."""
    by_institution: dict[str, set[str]] = {}
    for state in syncs:
        if state.source != LISTED and state.provider in enabled:
            by_institution.setdefault(state.institution, set()).add(state.provider)
    order = {p: i for i, p in enumerate(priority)}
    return [
        {
            "institution": institution,
            "counted_under": min(providers, key=lambda p: order.get(p, len(order))),
            "providers": ",".join(sorted(providers)),
        }
        for institution, providers in sorted(by_institution.items())
        if len(providers) > 1
    ]


def conditions(
    user_id: int,
    wanted: ActivityFilter,
    overlaps: list[dict[str, str]],
    enabled: Sequence[str],
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        ActivityRow.user_id == user_id,
        ActivityRow.provider.in_(list(enabled)),
    ]
    for overlap in overlaps:
        where.append(
            not_(
                and_(
                    ActivityRow.institution == overlap["institution"],
                    ActivityRow.provider != overlap["counted_under"],
                )
            )
        )
    if wanted.start is not None:
        where.append(ActivityRow.trade_date >= wanted.start)
    if wanted.end is not None:
        where.append(ActivityRow.trade_date <= wanted.end)
    if wanted.types:
        where.append(ActivityRow.type.in_(wanted.types))
    if wanted.account_id is not None:
        where.append(ActivityRow.account_id == wanted.account_id)
    if wanted.ticker is not None:
        where.append(func.upper(ActivityRow.ticker) == wanted.ticker)
    return where


def read_page(
    conn: Connection, where: list[ColumnElement[bool]], *, offset: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """How many rows match, and one page of them, newest first."""
    total = conn.execute(select(func.count()).select_from(ActivityRow).where(*where)).scalar_one()
    rows = conn.execute(
        select(*COLUMNS)
        .where(*where)
        .order_by(ActivityRow.trade_date.desc(), ActivityRow.id.desc())
        .offset(offset)
        .limit(limit)
    ).mappings()
    return int(total), [dict(row) for row in rows]


def read_rows(conn: Connection, where: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(*COLUMNS).where(*where).order_by(ActivityRow.trade_date, ActivityRow.id)
    ).mappings()
    return [dict(row) for row in rows]


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "trade_date": row["trade_date"].isoformat()
        if isinstance(row["trade_date"], date)
        else row["trade_date"],
    }
