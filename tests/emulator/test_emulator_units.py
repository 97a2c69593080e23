"""The emulator's units control: a test changes a holding's quantity and both providers
report the change, through the real SDKs over loopback HTTP.

Expected numbers are derived from ``sandbox/data.py`` (the seeded prices, cost bases and
cash), never copied; each changed answer is also held to the provider's contract (the
SnapTrade spec, plaid-python's models), so a change cannot make an answer malformed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest

from sandbox import data, demo
from sandbox.faults import Controls
from sandbox.server import EmulatorHandle, start_emulator
from tests.emulator_fixtures import (
    DEMO_USER,
    PlaidModels,
    WireRecorder,
    plaid_client,
    snaptrade_client,
    snaptrade_spec,
)

ACCOUNTS = {a.key: a for a in data.ALL_ACCOUNTS}
IBKR = data.IBKR_INDIVIDUAL
POSITIONS_PATH = "/accounts/{accountId}/positions/all"


def _seeded(account_key: str, ticker: str) -> data.Holding:
    return next(h for h in ACCOUNTS[account_key].holdings if h.ticker == ticker)


def _plaid_token(account_key: str) -> str:
    slug = next(
        i.slug
        for i in data.PLAID_INSTITUTIONS.values()
        if account_key in {a.key for a in i.accounts}
    )
    return demo.PLAID_ACCESS_TOKENS[slug]


def _plaid_holdings(handle: EmulatorHandle, account_key: str) -> dict[str, Any]:
    """The account's Plaid holdings by ticker (SDK objects), once the answer fits the models."""
    client = plaid_client(handle)
    wire = WireRecorder.on_plaid(client)
    response = client.investments_holdings_get(
        InvestmentsHoldingsGetRequest(access_token=_plaid_token(account_key))
    )
    status, _ = wire.answers[-1]
    problems = PlaidModels().answer_problems("/investments/holdings/get", status, wire.last_json())
    assert not problems, "\n".join(problems)
    tickers = {s.security_id: s.ticker_symbol for s in response.securities}
    account_id = data.PLAID_ACCOUNT_IDS[account_key]
    return {tickers[h.security_id]: h for h in response.holdings if h.account_id == account_id}


def _plaid_account(handle: EmulatorHandle, account_key: str) -> Any:
    response = plaid_client(handle).accounts_get(
        AccountsGetRequest(access_token=_plaid_token(account_key))
    )
    account_id = data.PLAID_ACCOUNT_IDS[account_key]
    return next(a for a in response.accounts if a.account_id == account_id)


def _snaptrade_positions(handle: EmulatorHandle, account_key: str) -> dict[str, dict[str, Any]]:
    """The account's SnapTrade positions by ticker, once the answer fits SnapTrade's spec."""
    client = snaptrade_client(handle)
    wire = WireRecorder.on_snaptrade(client)
    client.account_information.get_all_account_positions(
        account_id=data.SNAPTRADE_ACCOUNT_IDS[account_key], **DEMO_USER
    )
    answer = wire.last_json()
    snaptrade_spec().validate("get", POSITIONS_PATH, 200, answer)
    return {p["instrument"]["symbol"]: p for p in answer["results"]}


def _snaptrade_total(handle: EmulatorHandle, account_key: str) -> float:
    client = snaptrade_client(handle)
    wire = WireRecorder.on_snaptrade(client)
    client.account_information.list_user_accounts(**DEMO_USER)
    answer = wire.last_json()
    snaptrade_spec().validate("get", "/accounts", 200, answer)
    account_id = data.SNAPTRADE_ACCOUNT_IDS[account_key]
    return next(a for a in answer if a["id"] == account_id)["balance"]["total"]["amount"]


@pytest.fixture
def controls(emulator: EmulatorHandle) -> Controls:
    assert emulator.controls is not None
    return emulator.controls


# --- the change shows on every provider ---------------------------------------------------


def test_changed_units_show_in_plaid_holdings_and_snaptrade_positions_alike(
    emulator: EmulatorHandle, controls: Controls
):
    seeded = _seeded(IBKR.key, "AMZN")
    new_units = seeded.quantity + 12.5

    controls.set_units(IBKR.key, "AMZN", new_units)

    plaid = _plaid_holdings(emulator, IBKR.key)["AMZN"]
    assert plaid.quantity == new_units
    assert plaid.institution_value == pytest.approx(round(new_units * seeded.price, 2))
    snap = _snaptrade_positions(emulator, IBKR.key)["AMZN"]
    assert float(snap["units"]) == new_units
    assert float(snap["price"]) == seeded.price


def test_the_average_cost_per_unit_is_kept_when_units_change(
    emulator: EmulatorHandle, controls: Controls
):
    seeded = _seeded(IBKR.key, "GOOGL")
    new_units = seeded.quantity / 4

    controls.set_units(IBKR.key, "GOOGL", new_units)

    per_unit = seeded.cost_basis / seeded.quantity
    plaid = _plaid_holdings(emulator, IBKR.key)["GOOGL"]
    assert plaid.cost_basis == pytest.approx(per_unit * new_units)
    snap = _snaptrade_positions(emulator, IBKR.key)["GOOGL"]
    assert float(snap["cost_basis"]) == pytest.approx(per_unit, abs=1e-4)


@pytest.mark.parametrize("account_key", sorted(ACCOUNTS))
def test_every_provider_serving_an_account_reports_its_changed_units(
    emulator: EmulatorHandle, controls: Controls, account_key: str
):
    seeded = ACCOUNTS[account_key].holdings[-1]  # fractional funds and money-market too
    new_units = seeded.quantity * 2 + 0.25

    controls.set_units(account_key, seeded.ticker, new_units)

    served = 0
    if account_key in data.PLAID_ACCOUNT_IDS:
        served += 1
        assert _plaid_holdings(emulator, account_key)[seeded.ticker].quantity == new_units
    if account_key in data.SNAPTRADE_ACCOUNT_IDS:
        served += 1
        positions = _snaptrade_positions(emulator, account_key)
        assert float(positions[seeded.ticker]["units"]) == new_units
    assert served >= 1
    # Only that holding moved: the account's other holdings keep their seeded units.
    for other in ACCOUNTS[account_key].holdings[:-1]:
        assert controls.units(account_key, other.ticker) == other.quantity


def test_zero_units_remove_the_position_from_both_providers(
    emulator: EmulatorHandle, controls: Controls
):
    controls.set_units(IBKR.key, "TSLA", 0)

    plaid = _plaid_holdings(emulator, IBKR.key)
    snap = _snaptrade_positions(emulator, IBKR.key)
    assert "TSLA" not in plaid
    assert "TSLA" not in snap
    others = {h.ticker for h in IBKR.holdings} - {"TSLA"}
    assert set(snap) == others
    assert set(plaid) == others | {f"CUR:{currency}" for currency, _ in IBKR.cash}


def test_account_totals_follow_the_changed_units_and_cash_does_not(
    emulator: EmulatorHandle, controls: Controls
):
    seeded = _seeded(IBKR.key, "SPY")
    new_units = seeded.quantity + 3
    gained = round(new_units * seeded.price, 2) - seeded.value
    expected_total = IBKR.total_value_usd() + gained * data.USD_PER_UNIT[seeded.currency]

    controls.set_units(IBKR.key, "SPY", new_units)

    assert _plaid_account(emulator, IBKR.key).balances.current == pytest.approx(expected_total)
    assert _snaptrade_total(emulator, IBKR.key) == pytest.approx(expected_total)
    balances = snaptrade_client(emulator).account_information.get_user_account_balance(
        account_id=data.SNAPTRADE_ACCOUNT_IDS[IBKR.key], **DEMO_USER
    )
    assert {b["currency"]["code"]: b["cash"] for b in balances.body} == dict(IBKR.cash)


# --- reading, refusing, resetting ---------------------------------------------------------


def test_units_reads_the_override_else_the_seeded_quantity(controls: Controls):
    seeded = _seeded("schwab-individual", "SWPPX")
    assert controls.units("schwab-individual", "SWPPX") == seeded.quantity

    controls.set_units("schwab-individual", "SWPPX", 1.5)

    assert controls.units("schwab-individual", "SWPPX") == 1.5


@pytest.mark.parametrize(
    ("account_key", "ticker", "named"),
    [
        ("no-such-account", "AMZN", "unknown account 'no-such-account'"),
        ("ibkr-individual", "AAPL", "holds no 'AAPL'"),  # held, but at Merrill
        ("ibkr-individual", "amzn", "holds no 'amzn'"),
    ],
)
def test_an_unknown_account_or_ticker_is_refused_with_what_is_known(
    controls: Controls, account_key: str, ticker: str, named: str
):
    with pytest.raises(ValueError, match=named):
        controls.set_units(account_key, ticker, 1)
    with pytest.raises(ValueError, match=named):
        controls.units(account_key, ticker)


@pytest.mark.parametrize("units", [-1, float("nan"), float("inf"), True, "10", None])
def test_units_that_are_not_a_finite_non_negative_number_are_refused(
    controls: Controls, units: Any
):
    with pytest.raises(ValueError, match="units must be"):
        controls.set_units(IBKR.key, "AMZN", units)
    assert controls.units(IBKR.key, "AMZN") == _seeded(IBKR.key, "AMZN").quantity


def test_resetting_the_state_drops_the_overrides(emulator: EmulatorHandle, controls: Controls):
    controls.set_units(IBKR.key, "VEA", 0)
    controls.set_units(IBKR.key, "IEF", 1)

    controls.reset_state()

    assert controls.units(IBKR.key, "IEF") == _seeded(IBKR.key, "IEF").quantity
    vea = _seeded(IBKR.key, "VEA").quantity
    assert float(_snaptrade_positions(emulator, IBKR.key)["VEA"]["units"]) == vea
    assert _plaid_holdings(emulator, IBKR.key)["VEA"].quantity == vea


# --- the state file: shared, and older files without overrides ----------------------------


def test_an_emulator_sharing_the_state_file_sees_the_change(tmp_path: Path):
    state = tmp_path / "s.json"
    with start_emulator(state_path=state) as first, start_emulator(state_path=state) as second:
        assert first.controls is not None
        first.controls.set_units(IBKR.key, "ASML", 2)
        assert float(_snaptrade_positions(second, IBKR.key)["ASML"]["units"]) == 2
        assert _plaid_holdings(second, IBKR.key)["ASML"].quantity == 2


def test_a_state_file_written_before_overrides_existed_still_serves_and_takes_changes(
    tmp_path: Path,
):
    state = tmp_path / "s.json"
    old = data.initial_state()
    del old["overrides"]
    state.write_text(json.dumps(old), encoding="utf-8")

    with start_emulator(state_path=state) as handle:
        assert handle.controls is not None
        seeded = _seeded(IBKR.key, "VMFXX")
        assert _plaid_holdings(handle, IBKR.key)["VMFXX"].quantity == seeded.quantity
        handle.controls.set_units(IBKR.key, "VMFXX", 250)
        assert float(_snaptrade_positions(handle, IBKR.key)["VMFXX"]["units"]) == 250

    assert json.loads(state.read_text(encoding="utf-8"))["overrides"]["units"] == {
        IBKR.key: {"VMFXX": 250}
    }


# --- the HTTP switch, for a test in another process -------------------------------------


@pytest.fixture
def standalone(tmp_path: Path):
    with start_emulator(port=0, state_path=tmp_path / "s.json") as handle:
        yield handle


def test_the_http_units_switch_changes_the_holding_on_both_providers(
    standalone: EmulatorHandle,
):
    admin = f"{standalone.base_url}/_emulator"
    body = {"account": IBKR.key, "ticker": "SPY", "units": 7.25}

    answer = requests.post(f"{admin}/units", json=body, timeout=5)

    assert answer.status_code == 200
    assert answer.json() == {"units": 7.25}
    assert float(_snaptrade_positions(standalone, IBKR.key)["SPY"]["units"]) == 7.25
    plaid = _plaid_holdings(standalone, IBKR.key)["SPY"]
    assert plaid.institution_value == pytest.approx(round(7.25 * _seeded(IBKR.key, "SPY").price, 2))

    gone = requests.post(f"{admin}/units", json=body | {"units": 0}, timeout=5)
    assert gone.json() == {"units": 0}
    assert "SPY" not in _snaptrade_positions(standalone, IBKR.key)

    assert requests.post(f"{admin}/state/reset", timeout=5).status_code == 200
    assert "SPY" in _snaptrade_positions(standalone, IBKR.key)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"account": "nope", "ticker": "SPY", "units": 1}, "unknown account 'nope'"),
        ({"account": IBKR.key, "ticker": "AAPL", "units": 1}, "holds no 'AAPL'"),
        ({"account": IBKR.key, "ticker": "SPY", "units": -2}, "units must be"),
        ({"account": IBKR.key, "ticker": "SPY", "units": "2"}, "units must be"),
        ({"account": IBKR.key, "ticker": "SPY"}, "units"),
        ({"ticker": "SPY", "units": 1}, "account"),
    ],
)
def test_the_http_units_switch_refuses_bad_input_with_a_message(
    standalone: EmulatorHandle, body: dict[str, Any], named: str
):
    answer = requests.post(f"{standalone.base_url}/_emulator/units", json=body, timeout=5)

    assert answer.status_code == 400
    assert named in answer.json()["error"]
    assert float(_snaptrade_positions(standalone, IBKR.key)["SPY"]["units"]) == (
        _seeded(IBKR.key, "SPY").quantity
    )
