"""Downloading an ECB reference-rate file (``FX_RATES_URL``) with ``requests``.

One GET with a connect and a read timeout; the body is read up to a size cap. A failure
is mapped once, here: no answer in time is ProviderTimeout, a network failure or a 5xx
or 429 is ProviderUnavailable, any other non-200 is ProviderRejected, and a 200 whose
body is not a rates file (or holds none) is MalformedResponse, all with provider="ecb".
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from core.errors import ProviderRejected, ProviderTimeout, ProviderUnavailable
from providers.ecb.files import PROVIDER, EcbRates, malformed, read_rates_file

if TYPE_CHECKING:
    import requests

CONNECT_TIMEOUT_SECONDS = 10.0
# The zipped history is about 0.6 MB and the daily file 1 kB.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


def download_source(url: str, fetched_on: date) -> str:
    """Where downloaded rates come from, in words."""
    return f"ECB reference rate ({url}, fetched {fetched_on.isoformat()})"


def download_rates(url: str, *, timeout: float, fetched_on: date) -> EcbRates:
    """The rates in the ECB file at ``url`` (the full history or the daily file).

    ``timeout`` bounds the wait for each read (and the connect, up to 10 s); ``fetched_on``
    is today's date as the caller's clock says, for the source label.
    """
    import requests  # only a process that downloads rates loads it

    try:
        with requests.get(
            url,
            timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout),
            stream=True,
            headers={"Accept": "application/zip, text/csv, */*"},
        ) as response:
            _check_status(url, response.status_code)
            body = _read_capped(url, response)
    except requests.Timeout as exc:
        raise ProviderTimeout(
            f"the ECB rates file at {url} did not answer within {timeout:g} s",
            provider=PROVIDER,
        ) from exc
    except requests.RequestException as exc:
        raise ProviderUnavailable(
            f"the ECB rates file at {url} could not be reached ({type(exc).__name__})",
            provider=PROVIDER,
        ) from exc
    return read_rates_file(body, source=download_source(url, fetched_on))


def _check_status(url: str, status: int) -> None:
    if status == 200:
        return
    message = f"the ECB rates file at {url} answered HTTP {status}"
    if status >= 500 or status == 429:
        raise ProviderUnavailable(message, provider=PROVIDER, status=status)
    raise ProviderRejected(message, provider=PROVIDER, status=status)


def _read_capped(url: str, response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
        body.extend(chunk)
        if len(body) > MAX_DOWNLOAD_BYTES:
            raise malformed(
                f"the ECB rates file at {url} is larger than {MAX_DOWNLOAD_BYTES} bytes: "
                "not a rates file"
            )
    return bytes(body)
