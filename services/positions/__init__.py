"""Positions: every holding of every account, cached in SQL with one lifetime per provider.

Owns the ``positions`` rows and each provider's ``position_snapshots``: ``service`` reads
and refreshes them (``fetchers`` ask the providers, ``refresh`` stores one provider's
answer once however many callers found it due, ``freshness`` and ``cooldown`` say when a
source is due or may be fetched again, ``store`` replaces rows in one transaction),
``views`` and ``formats`` build the answers the surfaces share (``holdings``, ``gains``,
``overlaps``), ``reads`` names the types a read is served through.

Guarantees: a failed, empty or malformed provider answer never deletes cached rows; a
replacement is one transaction; one fetch per Item or account however many readers; every
answer says how old it is and whether it is stale.
"""

from services.positions.fetchers import PlaidPositionsFetcher, SnapTradePositionsFetcher
from services.positions.overlaps import find_overlaps
from services.positions.service import PositionFetcher, PositionService
from services.positions.views import PositionViews

__all__ = [
    "PlaidPositionsFetcher",
    "PositionFetcher",
    "PositionService",
    "PositionViews",
    "SnapTradePositionsFetcher",
    "find_overlaps",
]
