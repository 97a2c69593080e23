"""Both loaders against the emulator through the real SDKs: fetch, normalize, map faults."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

import plaid_loader
import snaptrade_loader
from core.errors import (
    ConnectionDisabled,
    ItemNotFound,
    LoginRequired,
    MalformedResponse,
    ProviderAuthError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TradingNotPermitted,
)
from sandbox import demo
from tests.retry_waits import recording_retry_policy

HOLDINGS = "plaid /investments/holdings/get"
IBKR = "interactive-brokers"
MERRILL = "merrill-lynch"


def plaid_client(emulator: Any, **kwargs: Any) -> Any:
    return plaid_loader.make_plaid_client(
        emulator.plaid_url,
        demo.PLAID_CLIENT_ID,
        demo.PLAID_SECRET,
        **kwargs,
        retry_policy=recording_retry_policy(),
    )


def snap_client(emulator: Any, **kwargs: Any) -> Any:
    return snaptrade_loader.make_snaptrade_client(
        emulator.snaptrade_url,
        demo.SNAPTRADE_CLIENT_ID,
        demo.SNAPTRADE_CONSUMER_KEY,
        **kwargs,
        retry_policy=recording_retry_policy(),
    )


def plaid_positions(emulator: Any, slug: str) -> list[Any]:
    return plaid_loader.load_plaid_positions(
        demo.PLAID_ACCESS_TOKENS[slug],
        plaid_client(emulator),
        user_email=demo.DEMO_USER_EMAIL,
        institution_slug=slug,
    )


def snaptrade_positions(emulator: Any) -> list[Any]:
    return snaptrade_loader.load_snaptrade_positions(
        demo.DEMO_USER_EMAIL, snap_client(emulator), user_secret=demo.SNAPTRADE_USER_SECRET
    )


def holdings_by_ticker(positions: list[Any]) -> dict[str, float]:
    """Quantities per ticker, money-market funds folded into cash as the providers differ there."""
    totals: dict[str, float] = defaultdict(float)
    for p in positions:
        if p.security_type in ("cash", "money_market"):
            key = f"cash:{p.currency}"
            totals[key] += p.market_value or 0.0
        else:
            totals[p.ticker] += p.quantity
    return {k: round(v, 4) for k, v in totals.items()}


def test_plaid_holdings_are_fetched_and_normalized_through_the_sdk(emulator: Any) -> None:
    positions = plaid_positions(emulator, MERRILL) + plaid_positions(emulator, IBKR)
    assert {p.institution for p in positions} == {"Merrill Lynch", "Interactive Brokers"}
    assert {p.provider for p in positions} == {"plaid"}
    types = {p.security_type for p in positions}
    assert {"equity", "etf", "mutual_fund", "cash"} <= types
    for p in positions:
        assert p.account_id and p.currency and p.quantity is not None
    cash = [p for p in positions if p.security_type == "cash"]
    # one cash row per account and currency
    assert len(cash) == len({(p.account_id, p.currency) for p in cash})
    assert emulator.controls.calls(HOLDINGS) == 2  # one call per Item, nothing else
    assert emulator.controls.calls() == 2


def test_snaptrade_holdings_come_from_positions_all_and_balances(emulator: Any) -> None:
    positions = snaptrade_positions(emulator)
    assert {p.institution for p in positions} == {"Interactive Brokers", "Charles Schwab"}
    assert {p.provider for p in positions} == {"snaptrade"}
    assert any(p.security_type == "cash" and p.currency != "USD" for p in positions)
    accounts = {p.account_id for p in positions}
    assert emulator.controls.calls("snaptrade /accounts") == 1
    assert emulator.controls.calls("snaptrade /accounts/{accountId}/positions/all") == len(accounts)
    assert emulator.controls.calls("snaptrade /accounts/{accountId}/balances") == len(accounts)


def test_demo_data_has_at_least_30_positions_with_cash_in_two_currencies(emulator: Any) -> None:
    positions = (
        plaid_positions(emulator, MERRILL)
        + plaid_positions(emulator, IBKR)
        + snaptrade_positions(emulator)
    )
    assert len(positions) >= 30
    assert {p.currency for p in positions if p.security_type == "cash"} >= {"USD"}
    assert len({p.currency for p in positions if p.security_type == "cash"}) >= 2
    assert any(p.security_type == "money_market" for p in positions)


def test_ibkr_from_plaid_and_from_snaptrade_describe_the_same_holdings(emulator: Any) -> None:
    from_plaid = holdings_by_ticker(plaid_positions(emulator, IBKR))
    from_snaptrade = holdings_by_ticker(
        [p for p in snaptrade_positions(emulator) if p.institution == "Interactive Brokers"]
    )
    assert from_plaid == from_snaptrade
    assert len(from_plaid) >= 5


def test_a_wrong_plaid_secret_is_an_auth_error_and_not_retried(emulator: Any) -> None:
    client = plaid_loader.make_plaid_client(
        emulator.plaid_url, demo.PLAID_CLIENT_ID, "wrong", retry_policy=recording_retry_policy()
    )
    with pytest.raises(ProviderAuthError) as caught:
        plaid_loader.fetch_plaid_holdings(demo.PLAID_ACCESS_TOKENS[IBKR], client)
    assert caught.value.provider == "plaid"
    assert emulator.controls.calls(HOLDINGS) == 1


def test_a_wrong_consumer_key_is_an_auth_error(emulator: Any) -> None:
    client = snaptrade_loader.make_snaptrade_client(
        emulator.snaptrade_url,
        demo.SNAPTRADE_CLIENT_ID,
        "not-the-key",
        retry_policy=recording_retry_policy(),
    )
    with pytest.raises(ProviderAuthError) as caught:
        snaptrade_loader.fetch_snaptrade_holdings(
            demo.DEMO_USER_EMAIL, client, user_secret=demo.SNAPTRADE_USER_SECRET
        )
    assert caught.value.status == 401


PLAID_FAULTS = [
    ("ITEM_LOGIN_REQUIRED", LoginRequired, "ITEM_LOGIN_REQUIRED", 1),
    ("RATE_LIMIT_EXCEEDED", RateLimited, "INVESTMENT_HOLDINGS_GET_LIMIT", 3),
    ("INSTITUTION_DOWN", ProviderUnavailable, "INSTITUTION_DOWN", 3),
    ("INTERNAL_SERVER_ERROR", ProviderUnavailable, "INTERNAL_SERVER_ERROR", 3),
    ("ITEM_NOT_FOUND", ItemNotFound, "ITEM_NOT_FOUND", 1),
    ("503", ProviderUnavailable, "PLANNED_MAINTENANCE", 3),
    ("malformed", MalformedResponse, None, 1),
    ("missing_field", MalformedResponse, None, 1),
    ("nested", MalformedResponse, None, 1),
    ("huge", MalformedResponse, None, 1),
]


@pytest.mark.parametrize(("fault", "error_class", "code", "calls"), PLAID_FAULTS)
def test_each_plaid_fault_maps_to_its_error_with_bounded_retries(
    emulator: Any,
    retry_sleeps: list[float],
    fault: str,
    error_class: type,
    code: str | None,
    calls: int,
) -> None:
    emulator.controls.fail(HOLDINGS, fault)
    with pytest.raises(error_class) as caught:
        plaid_loader.fetch_plaid_holdings(demo.PLAID_ACCESS_TOKENS[IBKR], plaid_client(emulator))
    error = caught.value
    assert type(error) is error_class
    assert error.provider == "plaid"
    assert error.code == code
    assert error.message
    assert emulator.controls.calls(HOLDINGS) == calls
    assert len(retry_sleeps) == calls - 1


def test_a_plaid_fault_that_clears_is_retried_to_success(
    emulator: Any, retry_sleeps: list[float]
) -> None:
    emulator.controls.fail(HOLDINGS, "INSTITUTION_DOWN", times=2)
    raw = plaid_loader.fetch_plaid_holdings(demo.PLAID_ACCESS_TOKENS[IBKR], plaid_client(emulator))
    assert raw["holdings"]
    assert emulator.controls.calls(HOLDINGS) == 3
    assert len(retry_sleeps) == 2


SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"

SNAPTRADE_FAULTS = [
    ("429", RateLimited, 429, 3),
    ("500", ProviderUnavailable, 500, 3),
    ("503", ProviderUnavailable, 503, 3),
    ("3003", ConnectionDisabled, 402, 1),
    ("1020", TradingNotPermitted, 403, 1),
    ("malformed", MalformedResponse, None, 1),
    ("missing_field", MalformedResponse, None, 1),
    ("nested", MalformedResponse, None, 1),
    ("huge", MalformedResponse, None, 1),
]


@pytest.mark.parametrize(("fault", "error_class", "status", "calls"), SNAPTRADE_FAULTS)
def test_each_snaptrade_fault_maps_to_its_error_with_bounded_retries(
    emulator: Any, fault: str, error_class: type, status: int | None, calls: int
) -> None:
    emulator.controls.fail("snaptrade /accounts", fault, retry_after=2)
    with pytest.raises(error_class) as caught:
        snaptrade_positions(emulator)
    error = caught.value
    assert type(error) is error_class
    assert error.provider == "snaptrade"
    assert error.status == status
    assert emulator.controls.calls("snaptrade /accounts") == calls
    assert demo.SNAPTRADE_USER_SECRET not in error.message


def test_a_snaptrade_429_honours_retry_after(emulator: Any, retry_sleeps: list[float]) -> None:
    emulator.controls.fail("snaptrade /accounts", "429", times=1, retry_after=7)
    snaptrade_positions(emulator)
    assert retry_sleeps == [7.0]


def test_a_retry_after_too_long_to_wait_is_not_waited_for(
    emulator: Any, retry_sleeps: list[float]
) -> None:
    emulator.controls.fail("snaptrade /accounts", "429", retry_after=3600)
    with pytest.raises(RateLimited) as caught:
        snaptrade_positions(emulator)
    assert caught.value.retry_after == 3600
    assert retry_sleeps == []
    assert emulator.controls.calls("snaptrade /accounts") == 1


def test_a_hung_call_times_out(emulator: Any) -> None:
    emulator.controls.set_latency(HOLDINGS, 2.0)
    client = plaid_client(emulator, timeout_seconds=0.2)
    with pytest.raises(ProviderTimeout):
        plaid_loader.fetch_plaid_holdings(demo.PLAID_ACCESS_TOKENS[IBKR], client)


def test_a_hung_snaptrade_call_times_out_despite_the_sdk_default(emulator: Any) -> None:
    emulator.controls.set_latency("snaptrade /accounts", 2.0)
    with pytest.raises(ProviderTimeout):
        snaptrade_loader.fetch_snaptrade_holdings(
            demo.DEMO_USER_EMAIL,
            snap_client(emulator, timeout_seconds=0.2),
            user_secret=demo.SNAPTRADE_USER_SECRET,
        )


def test_a_dead_server_is_unavailable_and_the_error_hides_the_user_secret() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = snaptrade_loader.make_snaptrade_client(
        f"http://127.0.0.1:{port}",
        demo.SNAPTRADE_CLIENT_ID,
        demo.SNAPTRADE_CONSUMER_KEY,
        retry_policy=recording_retry_policy(),
    )
    with pytest.raises(ProviderUnavailable) as caught:
        snaptrade_loader.fetch_snaptrade_holdings(
            demo.DEMO_USER_EMAIL, client, user_secret=demo.SNAPTRADE_USER_SECRET
        )
    text = caught.value.message + repr(caught.value.to_dict())
    assert demo.SNAPTRADE_USER_SECRET not in text


def test_every_provider_request_lands_in_the_call_ledger(emulator: Any) -> None:
    records: list[dict[str, Any]] = []

    class Sink:
        def record(self, **fields: Any) -> None:
            records.append(fields)

    client = plaid_loader.make_plaid_client(
        emulator.plaid_url,
        demo.PLAID_CLIENT_ID,
        demo.PLAID_SECRET,
        sink=Sink(),
        retry_policy=recording_retry_policy(),
    )
    plaid_loader.fetch_plaid_holdings(demo.PLAID_ACCESS_TOKENS[IBKR], client, subject=IBKR)
    assert len(records) == 1
    assert records[0]["endpoint"] == "POST /investments/holdings/get"
    assert records[0]["subject"] == IBKR
    assert records[0]["status"] == "ok" and records[0]["http_status"] == 200
    assert demo.PLAID_ACCESS_TOKENS[IBKR] not in repr(records)


def test_hosted_link_returns_a_public_token_that_exchanges_for_an_access_token(
    emulator: Any,
) -> None:
    client = plaid_client(emulator)
    link = plaid_loader.create_link_token(client, demo.DEMO_USER_EMAIL)
    assert link["hosted_link_url"].startswith(emulator.plaid_url)
    waits: list[float] = []
    with pytest.raises(ProviderTimeout):
        plaid_loader.wait_for_public_token(
            link["link_token"],
            timeout=30,
            poll=10,
            client=client,
            sleep=waits.append,
            monotonic=lambda: 10.0 * len(waits),
        )
    assert waits == [10, 10, 10]  # polled at 0, 10, 20 and 30 s
    emulator.controls.complete_link(link["link_token"], "merrill-lynch")
    public_token = plaid_loader.wait_for_public_token(
        link["link_token"], client=client, sleep=waits.append
    )
    access_token, item_id = plaid_loader.exchange_public_token(public_token, client)
    assert access_token.startswith("access-") and item_id
