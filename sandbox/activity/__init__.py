"""Two years of activity history for every demo account, provider-neutral.

``model`` holds :class:`Activity` and the history's window, ``lots`` the trades that
built each seeded holding, ``generate`` the whole history of an account for an injected
``today``, ``corrections`` what a test changed (a corrected amount, a new id or day, a
removal, a repeated row) in the shared state. The Plaid and SnapTrade modules render it
in their own formats.
"""

# Re-exports only: the submodules import each other, never this package.
from sandbox.activity.corrections import (
    activities_by_account,
    correct_activity,
    remove_activity,
    repeat_activity,
    served_activities,
)
from sandbox.activity.generate import (
    FOREIGN_DIVIDENDS,
    MONTHLY_FUND_DIVIDEND,
    QUARTERLY_DIVIDENDS,
    activities_for,
)
from sandbox.activity.model import KINDS, Activity, ActivityKind, history_window, today_of

__all__ = [
    "FOREIGN_DIVIDENDS",
    "KINDS",
    "MONTHLY_FUND_DIVIDEND",
    "QUARTERLY_DIVIDENDS",
    "Activity",
    "ActivityKind",
    "activities_by_account",
    "activities_for",
    "correct_activity",
    "history_window",
    "remove_activity",
    "repeat_activity",
    "served_activities",
    "today_of",
]
