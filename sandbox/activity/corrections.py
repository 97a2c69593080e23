"""Corrections a test makes to the served activity history, kept in the shared state.

A provider may re-issue an activity with another amount, under a new id (a correction
re-issued as a new transaction) or on another day, or drop it; a provider may also repeat
an activity within one answer. A test simulates that here; both providers read an
account's history through :func:`served_activities`, so an account served by both
(Interactive Brokers) changes on both at once.

Layout in the state: ``state["overrides"]["activities"][account_key][generated_id] =
{"amount": float, "id": str, "date": "YYYY-MM-DD", "repeated": true}`` (any key may be
missing) or ``{"removed": true}``. The key is the id the activity was generated with: a
correction of a corrected activity updates the same entry. Generated ids follow the date,
so an entry applies to the history of the ``today`` it was made on.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any

from sandbox.activity.generate import activities_for
from sandbox.activity.model import Activity, history_window
from sandbox.data import ALL_ACCOUNTS, AccountTemplate

ACCOUNTS: dict[str, AccountTemplate] = {a.key: a for a in ALL_ACCOUNTS}
MAX_ID_CHARS = 100


def activities_by_account(
    today: date, state: dict[str, Any] | None = None
) -> dict[str, list[Activity]]:
    """Every demo account's history on ``today``, with ``state``'s corrections if given."""
    if state is None:
        return {key: activities_for(account, today) for key, account in ACCOUNTS.items()}
    return {key: served_activities(state, key, today) for key in ACCOUNTS}


def served_activities(state: dict[str, Any], account_key: str, today: date) -> list[Activity]:
    """What both providers serve for ``account_key`` on ``today``, oldest first."""
    return [activity for _, activity in _served(state, account_key, today)]


def correct_activity(
    state: dict[str, Any],
    account_key: str,
    activity_id: str,
    today: date,
    *,
    amount: float | None = None,
    new_id: str | None = None,
    trade_date: date | None = None,
) -> None:
    """Serve the activity ``activity_id`` with ``amount``, under ``new_id`` and/or on
    ``trade_date`` (a day of the served history) from now on."""
    if amount is None and new_id is None and trade_date is None:
        raise ValueError("a correction needs an amount, a new_id, a trade_date or more")
    served = _served(state, account_key, today)
    origin = _origin(served, account_key, activity_id)
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount)
    ):
        raise ValueError(f"an amount is a finite number, not {amount!r}")
    if new_id is not None:
        if not isinstance(new_id, str) or not new_id or len(new_id) > MAX_ID_CHARS:
            raise ValueError(f"a new id is a string of 1 to {MAX_ID_CHARS} characters")
        if any(a.id == new_id and o != origin for o, a in served):
            raise ValueError(f"account {account_key!r} already has an activity {new_id!r}")
    if trade_date is not None:
        first, last = history_window(today)
        if not isinstance(trade_date, date) or not first <= trade_date <= last:
            raise ValueError(f"a trade_date is a day from {first} to {last}, not {trade_date!r}")
    change = _changes(state, account_key).setdefault(origin, {})
    if amount is not None:
        change["amount"] = float(amount)
    if new_id is not None:
        change["id"] = new_id
    if trade_date is not None:
        change["date"] = trade_date.isoformat()


def repeat_activity(state: dict[str, Any], account_key: str, activity_id: str, today: date) -> None:
    """Serve ``activity_id`` twice in every answer, as a provider that repeats a row does."""
    origin = _origin(_served(state, account_key, today), account_key, activity_id)
    _changes(state, account_key).setdefault(origin, {})["repeated"] = True


def remove_activity(state: dict[str, Any], account_key: str, activity_id: str, today: date) -> None:
    """Make ``activity_id`` vanish from the account's history on every provider."""
    origin = _origin(_served(state, account_key, today), account_key, activity_id)
    _changes(state, account_key)[origin] = {"removed": True}


def _served(state: dict[str, Any], account_key: str, today: date) -> list[tuple[str, Activity]]:
    """(generated id, activity as served) for every activity still served."""
    account = ACCOUNTS.get(account_key)
    if account is None:
        raise ValueError(f"unknown account {account_key!r}; known: {sorted(ACCOUNTS)}")
    changes = state.get("overrides", {}).get("activities", {}).get(account_key, {})
    served = []
    for activity in activities_for(account, today):
        change = changes.get(activity.id)
        if change is None:
            served.append((activity.id, activity))
        elif not change.get("removed"):
            day = change.get("date")
            corrected = replace(
                activity,
                id=change.get("id", activity.id),
                amount=change.get("amount", activity.amount),
                trade_date=date.fromisoformat(day) if day else activity.trade_date,
            )
            served.extend([(activity.id, corrected)] * (2 if change.get("repeated") else 1))
    if any("date" in change for change in changes.values()):
        served.sort(key=lambda pair: pair[1].trade_date)  # still oldest first
    return served


def _origin(served: list[tuple[str, Activity]], account_key: str, activity_id: str) -> str:
    for origin, activity in served:
        if activity.id == activity_id:
            return origin
    raise ValueError(f"account {account_key!r} serves no activity {activity_id!r}")


def _changes(state: dict[str, Any], account_key: str) -> dict[str, dict[str, Any]]:
    overrides = state.setdefault("overrides", {})
    return overrides.setdefault("activities", {}).setdefault(account_key, {})
