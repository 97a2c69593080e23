"""Fault switches, latency, call counters, shared state and the standalone server."""

from __future__ import annotations

import datetime
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import plaid
import pytest
import requests
from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest
from plaid.model.investments_transactions_get_request import InvestmentsTransactionsGetRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from snaptrade_client import ApiException as SnapTradeApiException

from sandbox import data, demo
from sandbox.faults import Controls
from sandbox.faults.rules import HUGE_ANSWER_BYTES, NESTED_DEPTH
from sandbox.server import EmulatorHandle, ensure_emulator, start_emulator
from tests.emulator_fixtures import (
    DEMO_USER,
    plaid_client,
    signed_snaptrade_request,
    snaptrade_client,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
HOLDINGS = "plaid /investments/holdings/get"
POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
IBKR_TOKEN = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
MERRILL_TOKEN = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
IBKR_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]
SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    with start_emulator() as handle:
        yield handle


@pytest.fixture
def controls(emulator: EmulatorHandle) -> Controls:
    assert emulator.controls is not None
    return emulator.controls


def _holdings(emulator: EmulatorHandle, token: str = IBKR_TOKEN):
    return plaid_client(emulator).investments_holdings_get(
        InvestmentsHoldingsGetRequest(access_token=token)
    )


def _plaid_failure(emulator: EmulatorHandle, token: str = IBKR_TOKEN) -> plaid.ApiException:
    with pytest.raises(plaid.ApiException) as failure:
        _holdings(emulator, token)
    return failure.value


def _positions(emulator: EmulatorHandle, account_id: str = IBKR_ACCOUNT):
    return snaptrade_client(emulator).account_information.get_all_account_positions(
        account_id=account_id, **DEMO_USER
    )


def _snaptrade_failure(emulator: EmulatorHandle) -> SnapTradeApiException:
    with pytest.raises(SnapTradeApiException) as failure:
        _positions(emulator)
    return failure.value


def _raw_plaid_holdings(emulator: EmulatorHandle, token: str = IBKR_TOKEN) -> requests.Response:
    return requests.post(
        f"{emulator.plaid_url}/investments/holdings/get",
        json={"access_token": token},
        headers={"PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID, "PLAID-SECRET": demo.PLAID_SECRET},
        timeout=5,
    )


# --- provider-specific faults -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "error_code"),
    [
        ("ITEM_LOGIN_REQUIRED", 400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED"),
        ("RATE_LIMIT_EXCEEDED", 429, "RATE_LIMIT_EXCEEDED", "INVESTMENT_HOLDINGS_GET_LIMIT"),
        ("INSTITUTION_DOWN", 400, "INSTITUTION_ERROR", "INSTITUTION_DOWN"),
        ("INTERNAL_SERVER_ERROR", 500, "API_ERROR", "INTERNAL_SERVER_ERROR"),
        ("ITEM_NOT_FOUND", 400, "ITEM_ERROR", "ITEM_NOT_FOUND"),
        ("INVALID_ACCESS_TOKEN", 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN"),
        ("503", 503, "API_ERROR", "PLANNED_MAINTENANCE"),
    ],
)
def test_plaid_faults(
    emulator: EmulatorHandle,
    controls: Controls,
    fault: str,
    status: int,
    error_type: str,
    error_code: str,
):
    controls.fail(HOLDINGS, fault)
    failure = _plaid_failure(emulator)
    assert failure.status == status
    body = json.loads(failure.body)
    assert (body["error_type"], body["error_code"]) == (error_type, error_code)
    assert {"error_message", "display_message", "request_id"} <= set(body)


def test_plaid_rate_limit_code_follows_the_endpoint(emulator: EmulatorHandle, controls: Controls):
    controls.fail("plaid /accounts/get", "RATE_LIMIT_EXCEEDED")
    answer = requests.post(
        f"{emulator.plaid_url}/accounts/get",
        json={"access_token": IBKR_TOKEN},
        headers={"PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID, "PLAID-SECRET": demo.PLAID_SECRET},
        timeout=5,
    )
    assert answer.status_code == 429
    assert answer.json()["error_code"] == "ACCOUNTS_LIMIT"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("1020", 403, "1020"), ("1066", 403, "1066"), ("3003", 402, "3003"), ("500", 500, "0000")],
)
def test_snaptrade_faults(
    emulator: EmulatorHandle, controls: Controls, fault: str, status: int, code: str
):
    controls.fail(POSITIONS, fault)
    failure = _snaptrade_failure(emulator)
    assert failure.status == status
    assert failure.body == {"detail": failure.body["detail"], "status_code": status, "code": code}


@pytest.mark.parametrize(("retry_after", "header"), [(None, "1"), (7, "7")])
def test_snaptrade_throttling_sends_retry_after(
    emulator: EmulatorHandle, controls: Controls, retry_after: int | None, header: str
):
    controls.fail(POSITIONS, "429", retry_after=retry_after)
    answer = signed_snaptrade_request(emulator, "GET", f"/accounts/{IBKR_ACCOUNT}/positions/all")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == header
    assert answer.json() == {"detail": answer.json()["detail"], "status_code": 429, "code": "0000"}


def test_the_snaptrade_sdk_itself_retries_a_429_with_retry_after(
    emulator: EmulatorHandle, controls: Controls
):
    # Not an emulator rule but a fact the loaders must know: urllib3 inside the SDK
    # sleeps Retry-After and tries again, up to 3 more times, before raising.
    controls.fail(POSITIONS, "429", times=1, retry_after=0)
    assert _positions(emulator).status == 200
    assert controls.calls(POSITIONS) == 2


def test_snaptrade_503(emulator: EmulatorHandle, controls: Controls):
    controls.fail(POSITIONS, "503")
    failure = _snaptrade_failure(emulator)
    assert failure.status == 503
    assert set(failure.body) == {"detail", "status_code", "code"}


def test_unknown_fault_or_endpoint_is_refused(controls: Controls):
    with pytest.raises(ValueError, match="no fault"):
        controls.fail(HOLDINGS, "1020")
    with pytest.raises(ValueError, match="unknown endpoint"):
        controls.fail("plaid /investments/holdings", "503")


# --- generic faults ---------------------------------------------------------------------


def test_malformed_answers_200_with_a_body_that_is_not_json(
    emulator: EmulatorHandle, controls: Controls
):
    controls.fail(HOLDINGS, "malformed")
    answer = _raw_plaid_holdings(emulator)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        json.loads(answer.content)


def test_nested_answers_200_with_the_answer_and_a_value_nested_past_any_parser(
    emulator: EmulatorHandle, controls: Controls
):
    controls.fail(HOLDINGS, "nested")
    answer = _raw_plaid_holdings(emulator)
    assert answer.status_code == 200
    assert answer.content.startswith(b'{"extra":' + b"[" * NESTED_DEPTH + b"]" * NESTED_DEPTH)
    assert b'"holdings":' in answer.content
    with pytest.raises(RecursionError):
        json.loads(answer.content)


def test_huge_answers_200_with_the_answer_and_a_string_past_any_real_answer(
    emulator: EmulatorHandle, controls: Controls
):
    controls.fail(HOLDINGS, "huge")
    answer = _raw_plaid_holdings(emulator)
    assert answer.status_code == 200
    assert len(answer.content) >= HUGE_ANSWER_BYTES
    assert {"extra", "holdings", "securities"} <= set(answer.json())


def test_a_request_body_nested_past_the_parser_is_plaids_invalid_body(emulator: EmulatorHandle):
    answer = requests.post(
        f"{emulator.plaid_url}/investments/holdings/get",
        data=b"[" * 60_000,
        headers={
            "Content-Type": "application/json",
            "PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID,
            "PLAID-SECRET": demo.PLAID_SECRET,
        },
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_BODY"


def test_missing_field_drops_a_required_field(emulator: EmulatorHandle, controls: Controls):
    controls.fail(HOLDINGS, "missing_field")
    answer = _raw_plaid_holdings(emulator)
    assert answer.status_code == 200
    assert "securities" not in answer.json()
    assert "holdings" in answer.json()
    controls.fail(HOLDINGS, "missing_field")
    with pytest.raises(TypeError):  # how plaid-python reports a missing required field
        _holdings(emulator)


def test_missing_field_on_a_snaptrade_list(emulator: EmulatorHandle, controls: Controls):
    controls.fail("snaptrade /accounts", "missing_field")
    accounts = snaptrade_client(emulator).account_information.list_user_accounts(**DEMO_USER)
    assert accounts.body
    assert all("id" not in account for account in accounts.body)


def test_drop_closes_the_connection_without_an_answer(emulator: EmulatorHandle, controls: Controls):
    controls.fail(HOLDINGS, "drop", times=1)
    with pytest.raises(requests.ConnectionError):
        _raw_plaid_holdings(emulator)
    assert _raw_plaid_holdings(emulator).status_code == 200


def test_times_limits_a_fault_to_the_next_calls(emulator: EmulatorHandle, controls: Controls):
    controls.fail(POSITIONS, "500", times=2)
    assert _snaptrade_failure(emulator).status == 500
    assert _snaptrade_failure(emulator).status == 500
    assert _positions(emulator).status == 200


def test_a_fault_can_target_one_subject(emulator: EmulatorHandle, controls: Controls):
    controls.fail(HOLDINGS, "ITEM_LOGIN_REQUIRED", subject=IBKR_TOKEN)
    assert json.loads(_plaid_failure(emulator, IBKR_TOKEN).body)["error_code"] == (
        "ITEM_LOGIN_REQUIRED"
    )
    assert _holdings(emulator, MERRILL_TOKEN).accounts


def test_clear_removes_faults(emulator: EmulatorHandle, controls: Controls):
    controls.fail("*", "503")
    assert _snaptrade_failure(emulator).status == 503
    controls.clear()
    assert _positions(emulator).status == 200


# --- the activity-history endpoints ------------------------------------------------------

TRANSACTIONS = "plaid /investments/transactions/get"
ACTIVITIES = "snaptrade /accounts/{accountId}/activities"
HISTORY_ENDPOINTS = {
    TRANSACTIONS: ("investment_transactions", IBKR_TOKEN),
    ACTIVITIES: ("data", IBKR_ACCOUNT),
}


def _raw_history(emulator: EmulatorHandle, endpoint: str) -> requests.Response:
    if endpoint == TRANSACTIONS:
        return requests.post(
            f"{emulator.plaid_url}/investments/transactions/get",
            json={"access_token": IBKR_TOKEN, "start_date": "2000-01-01", "end_date": "2100-01-01"},
            headers={"PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID, "PLAID-SECRET": demo.PLAID_SECRET},
            timeout=5,
        )
    return signed_snaptrade_request(emulator, "GET", f"/accounts/{IBKR_ACCOUNT}/activities")


@pytest.mark.parametrize("endpoint", sorted(HISTORY_ENDPOINTS))
def test_the_history_endpoints_answer_every_generic_fault(
    emulator: EmulatorHandle, controls: Controls, endpoint: str
):
    required, subject = HISTORY_ENDPOINTS[endpoint]
    controls.fail(endpoint, "503", times=1)
    unavailable = _raw_history(emulator, endpoint)
    assert unavailable.status_code == 503

    controls.fail(endpoint, "malformed", times=1)
    malformed = _raw_history(emulator, endpoint)
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        json.loads(malformed.content)

    controls.fail(endpoint, "missing_field", times=1)
    missing = _raw_history(emulator, endpoint).json()
    assert required not in missing
    assert missing  # the rest of the answer is there

    controls.fail(endpoint, "drop", times=1)
    with pytest.raises(requests.ConnectionError):
        _raw_history(emulator, endpoint)

    controls.set_latency(endpoint, 0.05)
    assert _raw_history(emulator, endpoint).status_code == 200
    assert controls.requests(endpoint)[-1].latency == 0.05
    controls.clear()
    healthy = _raw_history(emulator, endpoint)
    assert healthy.status_code == 200 and healthy.json()[required]
    assert controls.calls(endpoint, subject=subject) == 6


def test_plaid_transactions_rate_limit_and_item_errors(
    emulator: EmulatorHandle, controls: Controls
):
    controls.fail(TRANSACTIONS, "RATE_LIMIT_EXCEEDED", times=1)
    limited = _raw_history(emulator, TRANSACTIONS)
    assert limited.status_code == 429
    assert limited.json()["error_code"] == "INVESTMENT_TRANSACTIONS_LIMIT"
    controls.fail(TRANSACTIONS, "ITEM_LOGIN_REQUIRED", subject=IBKR_TOKEN)
    assert _raw_history(emulator, TRANSACTIONS).json()["error_code"] == "ITEM_LOGIN_REQUIRED"
    controls.fail(TRANSACTIONS, "missing_field", times=1)
    with pytest.raises(TypeError):  # how plaid-python reports a missing required field
        plaid_client(emulator).investments_transactions_get(
            InvestmentsTransactionsGetRequest(
                access_token=MERRILL_TOKEN,
                start_date=datetime.date(2026, 1, 1),
                end_date=datetime.date(2026, 6, 1),
            )
        )


def test_snaptrade_activities_faults(emulator: EmulatorHandle, controls: Controls):
    controls.fail(ACTIVITIES, "3003", times=1)
    disabled = _raw_history(emulator, ACTIVITIES)
    assert disabled.status_code == 402 and disabled.json()["code"] == "3003"
    controls.fail(ACTIVITIES, "500", subject=SCHWAB_ACCOUNT)
    assert _raw_history(emulator, ACTIVITIES).status_code == 200  # another account
    with pytest.raises(SnapTradeApiException) as failed:
        snaptrade_client(emulator).account_information.get_account_activities(
            account_id=SCHWAB_ACCOUNT, **DEMO_USER
        )
    assert failed.value.status == 500


@pytest.mark.parametrize("endpoint", sorted(HISTORY_ENDPOINTS))
def test_a_held_history_request_is_answered_when_released(
    emulator: EmulatorHandle, controls: Controls, endpoint: str
):
    with controls.hold(endpoint) as hold:
        _, answers = _in_thread(lambda: _raw_history(emulator, endpoint))
        assert hold.wait_until_held(1) == 1
        assert answers.empty()
    assert _status(answers.get(timeout=10)) == 200


# --- counters and latency ---------------------------------------------------------------


def test_calls_are_counted_per_endpoint_and_subject(emulator: EmulatorHandle, controls: Controls):
    _holdings(emulator, IBKR_TOKEN)
    _holdings(emulator, IBKR_TOKEN)
    _holdings(emulator, MERRILL_TOKEN)
    controls.fail(POSITIONS, "500", times=1)
    _snaptrade_failure(emulator)  # a faulted call counts too
    _positions(emulator, SCHWAB_ACCOUNT)

    assert controls.calls(HOLDINGS) == 3
    assert controls.calls(HOLDINGS, subject=IBKR_TOKEN) == 2
    assert controls.calls(HOLDINGS, subject=MERRILL_TOKEN) == 1
    assert controls.calls(POSITIONS, subject=IBKR_ACCOUNT) == 1
    assert controls.calls(subject=SCHWAB_ACCOUNT) == 1
    assert controls.calls("plaid /accounts/get") == 0
    assert controls.calls() == 5
    controls.reset_counts()
    assert controls.calls() == 0


def test_latency_delays_answers_and_is_recorded(emulator: EmulatorHandle, controls: Controls):
    controls.set_latency(POSITIONS, 0.2)
    started = time.monotonic()
    _positions(emulator)
    # A lower bound only: it proves the switch really waits (how much longer the
    # answer takes depends on the machine, so no test asserts an upper bound).
    assert time.monotonic() - started >= 0.2
    assert [r.latency for r in controls.requests(POSITIONS)] == [0.2]
    _holdings(emulator)
    assert [r.latency for r in controls.requests(HOLDINGS)] == [0.0]  # only that endpoint

    controls.clear()
    _positions(emulator)
    assert [r.latency for r in controls.requests(POSITIONS)] == [0.2, 0.0]


# --- holds ------------------------------------------------------------------------------


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, queue.Queue[object]]:
    """Run ``call`` in a thread; its answer (or exception) arrives on the queue."""
    answers: queue.Queue[object] = queue.Queue()

    def run() -> None:
        try:
            answers.put(call())
        except Exception as exc:
            answers.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answers


def _status(answer: object) -> object:
    """An HTTP status, or the exception a caller got instead of an answer."""
    return answer.status_code if isinstance(answer, requests.Response) else answer


def test_a_held_request_is_counted_but_answered_only_when_released(
    emulator: EmulatorHandle, controls: Controls
):
    hold = controls.hold(HOLDINGS)
    thread, answers = _in_thread(lambda: _raw_plaid_holdings(emulator))
    assert hold.wait_until_held(1) == 1
    assert controls.calls(HOLDINGS) == 1  # received and counted...
    assert answers.empty()  # ...but parked: no answer while the hold is on
    _positions(emulator)  # another endpoint is not held
    assert controls.held() == 1

    assert hold.release() == 1
    assert _status(answers.get(timeout=10)) == 200
    thread.join(timeout=10)
    assert controls.held(HOLDINGS) == 0
    assert _status(_raw_plaid_holdings(emulator)) == 200  # released: no longer held


def test_a_hold_parks_every_request_of_its_endpoint_until_it_is_released(
    emulator: EmulatorHandle, controls: Controls
):
    with controls.hold(HOLDINGS) as hold:
        callers = [
            _in_thread(lambda token=token: _raw_plaid_holdings(emulator, token))
            for token in (IBKR_TOKEN, MERRILL_TOKEN, IBKR_TOKEN)
        ]
        assert hold.wait_until_held(3) == 3
        assert all(answers.empty() for _, answers in callers)
    # Leaving the block released all three.
    assert [_status(answers.get(timeout=10)) for _, answers in callers] == [200, 200, 200]
    assert controls.held() == 0


def test_clear_releases_held_requests(emulator: EmulatorHandle, controls: Controls):
    controls.hold("*")
    _, answers = _in_thread(lambda: _raw_plaid_holdings(emulator))
    assert controls.wait_until_held(HOLDINGS, 1) == 1
    controls.clear()
    assert _status(answers.get(timeout=10)) == 200


def test_waiting_for_requests_that_never_arrive_times_out(controls: Controls):
    controls.hold(HOLDINGS)
    with pytest.raises(TimeoutError, match="0 of 1 request"):
        controls.wait_until_held(HOLDINGS, 1, timeout=0.05)
    with pytest.raises(ValueError, match="unknown endpoint"):
        controls.hold("plaid /investments/holdings")


def test_stopping_the_emulator_answers_its_held_requests(tmp_path: Path):
    handle = start_emulator(state_path=tmp_path / "state.json")
    assert handle.controls is not None
    handle.controls.hold(HOLDINGS)
    thread, answers = _in_thread(lambda: _raw_plaid_holdings(handle))
    handle.controls.wait_until_held(HOLDINGS, 1)
    handle.stop()  # never released by the test: stopping must not leave it parked
    assert _status(answers.get(timeout=10)) == 200
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert handle.controls.held() == 0


# --- the webhook endpoints ----------------------------------------------------------------

WEBHOOK_ENDPOINTS = {
    "plaid /webhook_verification_key/get": "key",
    "plaid /item/webhook/update": "item",
    "plaid /sandbox/item/fire_webhook": "webhook_fired",
}


def _nowhere() -> str:
    """A loopback URL nothing listens at."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/webhooks"


@pytest.mark.parametrize("endpoint", sorted(WEBHOOK_ENDPOINTS))
def test_the_webhook_endpoints_answer_every_generic_fault(
    emulator: EmulatorHandle, controls: Controls, endpoint: str
):
    url = _nowhere()
    controls.set_plaid_webhook_url(url, IBKR_TOKEN)
    body = {
        "plaid /webhook_verification_key/get": {"key_id": controls.rotate_plaid_webhook_key()},
        "plaid /item/webhook/update": {"access_token": IBKR_TOKEN, "webhook": url},
        "plaid /sandbox/item/fire_webhook": {
            "access_token": IBKR_TOKEN,
            "webhook_code": "DEFAULT_UPDATE",
        },
    }[endpoint]

    def call() -> requests.Response:
        return requests.post(
            f"{emulator.plaid_url}{endpoint.split(' ', 1)[1]}",
            json=body,
            headers={"PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID, "PLAID-SECRET": demo.PLAID_SECRET},
            timeout=5,
        )

    required = WEBHOOK_ENDPOINTS[endpoint]
    controls.fail(endpoint, "503", times=1)
    assert call().status_code == 503
    controls.fail(endpoint, "malformed", times=1)
    with pytest.raises(ValueError):
        json.loads(call().content)
    controls.fail(endpoint, "missing_field", times=1)
    missing = call().json()
    assert required not in missing and missing["request_id"]
    controls.fail(endpoint, "drop", times=1)
    with pytest.raises(requests.ConnectionError):
        call()
    controls.fail(endpoint, "ITEM_LOGIN_REQUIRED", times=1, subject=IBKR_TOKEN)
    if endpoint == "plaid /webhook_verification_key/get":  # no access token: not its subject
        assert call().status_code == 200
    else:
        assert call().json()["error_code"] == "ITEM_LOGIN_REQUIRED"
        controls.clear()
    healthy = call()
    assert healthy.status_code == 200 and healthy.json()[required]
    assert controls.calls(endpoint) == 6
    # A webhook goes out only when the operation ran: a malformed or incomplete answer
    # still did it, a 503, a dropped connection or an error did not.
    sent = 0 if endpoint.endswith("/get") else 3
    assert len(controls.wait_for_webhooks(sent)) == sent


# --- HTTP switches --------------------------------------------------------------------


def test_http_switches(emulator: EmulatorHandle, controls: Controls):
    admin = f"{emulator.base_url}/_emulator"
    assert requests.get(f"{admin}/health", timeout=5).json()["status"] == "ok"
    fail: dict[str, str | int] = {"endpoint": POSITIONS, "fault": "3003", "times": 1}
    assert requests.post(f"{admin}/fail", json=fail, timeout=5).status_code == 200
    assert _snaptrade_failure(emulator).status == 402
    assert _positions(emulator).status == 200
    calls = requests.get(f"{admin}/calls", params={"endpoint": POSITIONS}, timeout=5).json()
    assert calls == {"calls": 2}

    latency: dict[str, str | float] = {"endpoint": "*", "seconds": 0.2}
    assert requests.post(f"{admin}/latency", json=latency, timeout=5).status_code == 200
    _positions(emulator)
    assert controls.requests(POSITIONS)[-1].latency == 0.2  # "*" reaches every endpoint
    assert requests.post(f"{admin}/clear", timeout=5).status_code == 200
    assert requests.post(f"{admin}/reset", timeout=5).status_code == 200
    assert requests.get(f"{admin}/calls", timeout=5).json() == {"calls": 0}
    _positions(emulator)
    assert controls.requests(POSITIONS)[-1].latency == 0.0  # cleared

    disable = requests.post(f"{admin}/connections/{IBKR_AUTH}/disable", json={}, timeout=5)
    assert disable.status_code == 200
    assert _snaptrade_failure(emulator).body["code"] == "3003"

    bad = requests.post(f"{admin}/fail", json={"endpoint": "nope", "fault": "503"}, timeout=5)
    assert bad.status_code == 400


def test_http_hold_switches(emulator: EmulatorHandle):
    admin = f"{emulator.base_url}/_emulator"
    hold = {"endpoint": HOLDINGS}
    assert requests.post(f"{admin}/hold", json=hold, timeout=5).json() == {"ok": True}
    _, answers = _in_thread(lambda: _raw_plaid_holdings(emulator))
    wait = {"endpoint": HOLDINGS, "count": 1, "timeout": 10}
    assert requests.post(f"{admin}/held/wait", json=wait, timeout=15).json() == {"held": 1}
    held = requests.get(f"{admin}/held", params={"endpoint": HOLDINGS}, timeout=5)
    assert held.json() == {"held": 1}
    assert answers.empty()

    released = requests.post(f"{admin}/release", json=hold, timeout=5)
    assert released.json() == {"released": 1}
    assert _status(answers.get(timeout=10)) == 200
    assert requests.get(f"{admin}/held", timeout=5).json() == {"held": 0}

    too_few = {"endpoint": HOLDINGS, "count": 1, "timeout": 0.05}
    timed_out = requests.post(f"{admin}/held/wait", json=too_few, timeout=5)
    assert timed_out.status_code == 408 and timed_out.json()["held"] == 0
    unknown = requests.post(f"{admin}/hold", json={"endpoint": "nope"}, timeout=5)
    assert unknown.status_code == 400


# --- state shared between emulator processes ---------------------------------------------


def test_state_file_is_shared_between_emulators(tmp_path: Path):
    state = tmp_path / "emulator-state.json"
    with start_emulator(state_path=state) as first, start_emulator(state_path=state) as second:
        assert first.controls is not None
        first.controls.disable_connection(IBKR_AUTH)
        listed = snaptrade_client(second).connections.list_brokerage_authorizations(**DEMO_USER)
        ibkr = next(a for a in listed.body if a["id"] == IBKR_AUTH)
        assert ibkr["disabled"] is True
        assert ibkr["disabled_date"] is not None
        assert _snaptrade_failure(second).body["code"] == "3003"

        plaid_client(second).item_remove(ItemRemoveRequest(access_token=MERRILL_TOKEN))
        failure = _plaid_failure(first, MERRILL_TOKEN)
        assert json.loads(failure.body)["error_code"] == "ITEM_NOT_FOUND"

        # Counters belong to each instance.
        assert second.controls is not None
        assert first.controls.calls() == 1
        assert second.controls.calls() == 3

    with start_emulator(state_path=state) as later:
        assert _snaptrade_failure(later).body["code"] == "3003"  # survives a restart
        assert later.controls is not None
        later.controls.reset_state()
        assert _positions(later).status == 200


def test_ensure_emulator_reuses_a_running_one(tmp_path: Path):
    first = ensure_emulator(tmp_path)
    try:
        pointer = json.loads((tmp_path / "emulator.json").read_text())
        assert pointer == {"url": first.base_url, "pid": os.getpid()}
        assert first.controls is not None

        second = ensure_emulator(tmp_path)
        assert second.base_url == first.base_url
        assert second.controls is None
        second.stop()  # a reused emulator is left running
        assert requests.get(f"{first.base_url}/_emulator/health", timeout=5).ok
    finally:
        first.stop()
    assert not (tmp_path / "emulator.json").exists()

    third = ensure_emulator(tmp_path)
    try:
        assert third.controls is not None
        assert (tmp_path / "emulator-state.json").exists()
    finally:
        third.stop()


def test_ensure_emulator_replaces_a_dead_pointer(tmp_path: Path):
    (tmp_path / "emulator.json").write_text(
        json.dumps({"url": f"http://127.0.0.1:{_free_port()}", "pid": 1})
    )
    handle = ensure_emulator(tmp_path)
    try:
        assert handle.controls is not None
        assert json.loads((tmp_path / "emulator.json").read_text())["url"] == handle.base_url
    finally:
        handle.stop()


# --- standalone -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_standalone_server_prints_its_urls(tmp_path: Path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--state", str(tmp_path / "s.json")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        assert first == f"plaid http://127.0.0.1:{port}/plaid\n"
        assert second == f"snaptrade http://127.0.0.1:{port}/snaptrade\n"
        health = requests.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=5)
        assert health.json()["pid"] == process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
