"""The emulator checks credentials like the real services and refuses in their shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import plaid
import pytest
import requests
from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest
from snaptrade_client import ApiException as SnapTradeApiException

from sandbox import data, demo
from sandbox.server import EmulatorHandle, start_emulator
from tests.emulator_fixtures import (
    DEMO_USER,
    OffsetClock,
    plaid_client,
    signed_snaptrade_request,
    snaptrade_client,
)

SNAPTRADE_ERROR_KEYS = {"detail", "status_code", "code"}
PLAID_ERROR_KEYS = {"error_type", "error_code", "error_message", "display_message", "request_id"}
IBKR_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def emulator(clock: OffsetClock) -> Iterator[EmulatorHandle]:
    with start_emulator(clock=clock) as handle:
        yield handle


def _assert_snaptrade_error(exc: SnapTradeApiException, status: int, code: str) -> None:
    assert exc.status == status
    assert isinstance(exc.body, dict)
    assert set(exc.body) == SNAPTRADE_ERROR_KEYS
    assert exc.body["status_code"] == status
    assert exc.body["code"] == code
    assert isinstance(exc.body["detail"], str)


def _plaid_error(exc: plaid.ApiException) -> dict:
    body = json.loads(exc.body)
    assert set(body) >= PLAID_ERROR_KEYS
    return body


# --- SnapTrade ----------------------------------------------------------------------


def test_snaptrade_accepts_the_sdk_signature(emulator: EmulatorHandle):
    accounts = snaptrade_client(emulator).account_information.list_user_accounts(**DEMO_USER)
    assert accounts.status == 200


def test_snaptrade_rejects_a_wrong_consumer_key(emulator: EmulatorHandle):
    snap = snaptrade_client(emulator, consumer_key="not-the-consumer-key")
    with pytest.raises(SnapTradeApiException) as refused:
        snap.account_information.list_user_accounts(**DEMO_USER)
    _assert_snaptrade_error(refused.value, 401, "1076")


def test_snaptrade_rejects_a_wrong_client_id(emulator: EmulatorHandle):
    snap = snaptrade_client(emulator, client_id="SOMEONE-ELSE")
    with pytest.raises(SnapTradeApiException) as refused:
        snap.connections.list_brokerage_authorizations(**DEMO_USER)
    _assert_snaptrade_error(refused.value, 401, "1076")


@pytest.mark.parametrize("offset", [-600, 360, 3600])
def test_snaptrade_rejects_a_stale_timestamp(
    emulator: EmulatorHandle, clock: OffsetClock, offset: float
):
    clock.offset = offset  # the SDK stamps real time; the emulator's clock is elsewhere
    snap = snaptrade_client(emulator)
    with pytest.raises(SnapTradeApiException) as refused:
        snap.account_information.get_all_account_positions(account_id=IBKR_ACCOUNT, **DEMO_USER)
    _assert_snaptrade_error(refused.value, 401, "1076")


def test_snaptrade_tolerates_clock_skew_within_five_minutes(
    emulator: EmulatorHandle, clock: OffsetClock
):
    clock.offset = 240
    snap = snaptrade_client(emulator)
    answer = snap.account_information.get_all_account_positions(
        account_id=IBKR_ACCOUNT, **DEMO_USER
    )
    assert answer.status == 200


def test_snaptrade_rejects_an_unknown_user_secret(emulator: EmulatorHandle):
    snap = snaptrade_client(emulator)
    with pytest.raises(SnapTradeApiException) as refused:
        snap.account_information.list_user_accounts(
            user_id=demo.SNAPTRADE_USER_ID, user_secret="wrong-secret"
        )
    _assert_snaptrade_error(refused.value, 401, "1083")


def test_snaptrade_signs_the_path_below_the_host_prefix(emulator: EmulatorHandle):
    # The SDK, given host ".../snaptrade", signs "/accounts", not "/snaptrade/accounts".
    assert signed_snaptrade_request(emulator, "GET", "/accounts").status_code == 200
    refused = signed_snaptrade_request(
        emulator, "GET", "/accounts", signed_path="/snaptrade/accounts"
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "1076"


def test_snaptrade_reads_the_signature_header_case_insensitively(emulator: EmulatorHandle):
    answer = signed_snaptrade_request(
        emulator, "GET", "/authorizations", signature_header="signature"
    )
    assert answer.status_code == 200


def test_snaptrade_signature_covers_the_body(emulator: EmulatorHandle):
    signed = signed_snaptrade_request(
        emulator, "POST", "/snapTrade/registerUser", body={"userId": "alice"}, user=False
    )
    assert signed.status_code == 200
    tampered = signed_snaptrade_request(
        emulator,
        "POST",
        "/snapTrade/registerUser",
        body={"userId": "mallory"},
        signed_body={"userId": "alice"},
        user=False,
    )
    assert tampered.status_code == 401
    assert tampered.json() == {
        "detail": "Unable to verify signature sent",
        "status_code": 401,
        "code": "1076",
    }


def test_snaptrade_api_status_needs_no_signature(emulator: EmulatorHandle):
    answer = requests.get(f"{emulator.snaptrade_url}/", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["online"] is True


# --- Plaid --------------------------------------------------------------------------


def test_plaid_rejects_a_wrong_secret(emulator: EmulatorHandle):
    client = plaid_client(emulator, secret="not-the-secret")
    with pytest.raises(plaid.ApiException) as refused:
        client.investments_holdings_get(
            InvestmentsHoldingsGetRequest(access_token=demo.PLAID_ACCESS_TOKENS["merrill-lynch"])
        )
    assert refused.value.status == 400
    body = _plaid_error(refused.value)
    assert (body["error_type"], body["error_code"]) == ("INVALID_INPUT", "INVALID_API_KEYS")


def test_plaid_accepts_keys_in_the_body(emulator: EmulatorHandle):
    answer = requests.post(
        f"{emulator.plaid_url}/item/get",
        json={
            "client_id": demo.PLAID_CLIENT_ID,
            "secret": demo.PLAID_SECRET,
            "access_token": demo.PLAID_ACCESS_TOKENS["merrill-lynch"],
        },
        timeout=5,
    )
    assert answer.status_code == 200


def test_plaid_requires_keys(emulator: EmulatorHandle):
    answer = requests.post(
        f"{emulator.plaid_url}/item/get",
        json={"access_token": demo.PLAID_ACCESS_TOKENS["merrill-lynch"]},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "MISSING_FIELDS"


def test_plaid_rejects_an_unknown_access_token(emulator: EmulatorHandle):
    client = plaid_client(emulator)
    with pytest.raises(plaid.ApiException) as refused:
        client.investments_holdings_get(
            InvestmentsHoldingsGetRequest(access_token="access-sandbox-unknown")
        )
    assert refused.value.status == 400
    body = _plaid_error(refused.value)
    assert (body["error_type"], body["error_code"]) == ("INVALID_INPUT", "INVALID_ACCESS_TOKEN")


def test_snaptrade_signs_an_empty_body_as_null(emulator: EmulatorHandle):
    # The SDK sends "{}" for a login without options and signs its content as null.
    login = snaptrade_client(emulator).authentication.login_snap_trade_user(**DEMO_USER)
    assert login.status == 200
