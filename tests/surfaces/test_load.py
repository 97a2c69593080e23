"""A short run of the load harness (``bench/load.py``): gunicorn workers on Postgres.

Several gunicorn worker processes (each with threads) serve
``GET /api/positions?format=summary`` to logged-in clients, starting with every
cache expired, while the emulator (a separate process) answers slowly: the
single flight (per-process lock + Postgres advisory lock) must let exactly one
holdings call per Plaid Item and one positions call per SnapTrade account
through, and every request must succeed with complete, fresh data.

Synchronisation is by reading the children's output lines (the emulator's URL,
gunicorn's "Listening at" and each worker's ready line), never by sleeping.
"""

from __future__ import annotations

import pytest

from bench.load import LoadConfig, markdown, run_load

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.timeout(180)
def test_short_load_on_gunicorn_fetches_once_per_item_and_account_with_no_errors(
    postgres_url: str,
) -> None:
    config = LoadConfig(
        duration=5.0,
        clients=6,
        workers=2,
        threads=3,
        plaid_latency=0.5,
        snaptrade_latency=0.5,
        boot_timeout=60.0,
    )
    result = run_load(postgres_url, config)
    report = markdown(result)

    assert result.failures == [], report
    assert result.requests > config.clients, report
    assert result.errors == 0 and result.degraded == 0, report
    assert set(result.plaid_holdings_calls.values()) == {1}, report
    assert len(result.plaid_holdings_calls) == 2, report
    assert set(result.snaptrade_positions_calls.values()) == {1}, report
    assert len(result.snaptrade_positions_calls) == 2, report
    # Nothing here asserts on time (the report shows it): more answers than clients,
    # all complete and fresh, from one fetch per source, means the cache served the rest.
