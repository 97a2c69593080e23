"""Reading one ECB reference-rate file into plain rows.

Two layouts are read, zipped or not:

* the full history, ``eurofxref-hist.csv``: ``Date,USD,JPY,...,`` then one row a day,
  newest first, ``2026-10-30,1.1172,175.68,...``, with ``N/A`` where a currency had no rate;
* the daily file, ``eurofxref.csv``: ``Date, USD, JPY, ...,`` then one row
  ``30 October 2026, 1.1172, 175.68, ...`` (spaces after the commas, the date in words).

Anything else (an HTML error page, an empty body, a row that is not a date and numbers) is
:class:`MalformedResponse`: a file that cannot be read whole gives no rates at all, so a
bad download can never replace good rates with half of them.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from core.errors import MalformedResponse

PROVIDER = "ecb"
# The unzipped history is about 2 MB; a file far larger than that is not a rates file.
MAX_CSV_BYTES = 50 * 1024 * 1024
MISSING = ("", "N/A", "NA", "-")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}


class EcbRate(NamedTuple):
    """How many units of ``currency`` one euro bought on ``rate_date`` (ECB reference)."""

    currency: str
    rate_date: date
    per_euro: float


@dataclass(frozen=True)
class EcbRates:
    """The rates of one file, and where they came from, in words."""

    rates: tuple[EcbRate, ...]
    source: str

    @property
    def newest(self) -> date | None:
        return max((rate.rate_date for rate in self.rates), default=None)


def malformed(message: str) -> MalformedResponse:
    return MalformedResponse(message, provider=PROVIDER)


def read_rates_file(data: bytes, *, source: str, since: date | None = None) -> EcbRates:
    """The rates in ``data`` (a zip holding one CSV, or the CSV), from ``since`` on.

    Raises MalformedResponse when ``data`` is not an ECB rates file or holds no rate at all.
    """
    text = _csv_text(data)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise malformed("the ECB rates file is empty")
    currencies = _header(lines[0])
    rates: list[EcbRate] = []
    rows = 0
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        rows += 1
        day = _date(line.split(",", 1)[0].strip(), number)
        if since is not None and day < since:
            continue
        rates.extend(_row(line, day, currencies, number))
    if rows == 0:
        raise malformed("the ECB rates file has a header but no rates")
    if not rates and since is None:
        raise malformed("the ECB rates file has rows but not one rate in them")
    return EcbRates(tuple(rates), source)


def newest_day(data: bytes) -> date:
    """The newest day in ``data`` (read from the first column only, so it is cheap)."""
    lines = _csv_text(data).splitlines()
    if not lines:
        raise malformed("the ECB rates file is empty")
    _header(lines[0])
    days = [
        _date(line.split(",", 1)[0].strip(), number)
        for number, line in enumerate(lines[1:], start=2)
        if line.strip()
    ]
    if not days:
        raise malformed("the ECB rates file has a header but no rates")
    return max(days)


def _csv_text(data: bytes) -> str:
    if data[:4] == b"PK\x03\x04":
        data = _unzip(data)
    if len(data) > MAX_CSV_BYTES:
        raise malformed(f"the ECB rates file is {len(data)} bytes, far more than a rates file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise malformed("the ECB rates file is not text") from exc


def _unzip(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if i.filename.lower().endswith(".csv")]
            if len(members) != 1:
                raise malformed(f"the ECB rates zip holds {len(members)} CSV files instead of one")
            if members[0].file_size > MAX_CSV_BYTES:
                raise malformed("the CSV in the ECB rates zip is far larger than a rates file")
            return archive.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise malformed("the ECB rates zip cannot be opened") from exc


def _header(line: str) -> list[str]:
    cells = [cell.strip() for cell in next(csv.reader([line]))]
    if not cells or cells[0].lower() != "date":
        raise malformed("the ECB rates file does not start with a Date column")
    while cells and not cells[-1]:
        cells.pop()  # both layouts end every line with a comma
    currencies = cells[1:]
    bad = [cell for cell in currencies if not _CURRENCY.fullmatch(cell)]
    if bad or not currencies:
        raise malformed(
            "the ECB rates file's header names no currencies"
            if not currencies
            else f"the ECB rates file's header has {bad[0][:20]!r} where a currency code belongs"
        )
    if len(set(currencies)) != len(currencies):
        raise malformed("the ECB rates file's header names a currency twice")
    return currencies


def _date(cell: str, number: int) -> date:
    try:
        return date.fromisoformat(cell)
    except ValueError:
        pass
    parts = cell.split()
    if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        month = _MONTHS.get(parts[1].lower())
        if month is not None:
            try:
                return date(int(parts[2]), month, int(parts[0]))
            except ValueError:
                pass
    raise malformed(f"line {number} of the ECB rates file starts with {cell[:20]!r}, not a date")


def _row(line: str, day: date, currencies: list[str], number: int) -> list[EcbRate]:
    cells = [cell.strip() for cell in next(csv.reader([line]))][1:]
    if any(cells[len(currencies) :]):
        raise malformed(f"line {number} of the ECB rates file has more values than currencies")
    rates = []
    for currency, cell in zip(currencies, cells, strict=False):
        if cell.upper() in MISSING:
            continue
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise malformed(
                f"line {number} of the ECB rates file has {cell[:20]!r} as the {currency} rate"
            )
        rates.append(EcbRate(currency, day, value))
    return rates
