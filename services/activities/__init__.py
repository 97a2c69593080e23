"""Activity history: trades, dividends, interest and fees from every account.

``store`` keeps the rows and each source's sync state (a source is a Plaid Item or a
SnapTrade account), ``sync`` fetches what is due (24 months the first time, then only
since the last sync, re-reading a lookback window for late corrections), ``queries``
answers pages of activities, ``income`` sums dividends, interest and fees by period,
month and account, and ``views`` is what the MCP tools, the CLI and the pages call.

Guarantees: a failed or empty provider answer keeps the stored rows; a sync replaces its
lookback window in one transaction and stores an activity once however often it comes;
one call per unchanged Item or account.
"""

from services.activities.store import ActivityStore
from services.activities.sync import ActivitySyncer
from services.activities.views import ActivityViews, RateSource

__all__ = [
    "ActivityStore",
    "ActivitySyncer",
    "ActivityViews",
    "RateSource",
]
