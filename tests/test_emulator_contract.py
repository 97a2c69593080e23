"""The emulator answers like the real providers: every endpoint is called through the
official SDK over loopback HTTP, and the JSON on the wire is checked against the
provider's own OpenAPI spec. plaid-python parses strictly, so a parsed answer is
itself evidence that no required field is missing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import plaid
import pytest
import requests
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest
from plaid.model.investments_refresh_request import InvestmentsRefreshRequest
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.link_token_get_request import LinkTokenGetRequest
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from snaptrade_client import ApiException as SnapTradeApiException

from sandbox import data, demo
from sandbox.server import EmulatorHandle, start_emulator
from tests.emulator_fixtures import (
    DEMO_USER,
    OffsetClock,
    SpecValidator,
    WireRecorder,
    plaid_client,
    plaid_spec,
    snaptrade_client,
    snaptrade_spec,
)

IBKR_TOKEN = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
MERRILL_TOKEN = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
SCHWAB_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]
IBKR_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]
SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def emulator(clock: OffsetClock) -> Iterator[EmulatorHandle]:
    with start_emulator(clock=clock) as handle:
        yield handle


@pytest.fixture
def plaid_schema() -> SpecValidator:
    return plaid_spec()


@pytest.fixture
def snap_schema() -> SpecValidator:
    return snaptrade_spec()


class PlaidWire:
    """A Plaid SDK client plus the raw answers it received."""

    def __init__(self, handle: EmulatorHandle, schema: SpecValidator) -> None:
        self.client = plaid_client(handle)
        self.recorder = WireRecorder.on_plaid(self.client)
        self.schema = schema

    def check(self, path: str, status: int | str = 200) -> dict:
        answer = self.recorder.last_json()
        self.schema.validate("post", path, status, answer)
        return answer


class SnapWire:
    """A SnapTrade SDK client plus the raw answers it received."""

    def __init__(self, handle: EmulatorHandle, schema: SpecValidator) -> None:
        self.client = snaptrade_client(handle)
        self.recorder = WireRecorder.on_snaptrade(self.client)
        self.schema = schema

    def check(self, method: str, path: str, status: int | str = 200):
        answer = self.recorder.last_json()
        self.schema.validate(method, path, status, answer)
        return answer


@pytest.fixture
def plaid_wire(emulator: EmulatorHandle, plaid_schema: SpecValidator) -> PlaidWire:
    return PlaidWire(emulator, plaid_schema)


@pytest.fixture
def snap_wire(emulator: EmulatorHandle, snap_schema: SpecValidator) -> SnapWire:
    return SnapWire(emulator, snap_schema)


# --- Plaid ------------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(demo.PLAID_ACCESS_TOKENS))
def test_plaid_holdings_match_the_spec_and_the_seeded_data(plaid_wire: PlaidWire, slug: str):
    response = plaid_wire.client.investments_holdings_get(
        InvestmentsHoldingsGetRequest(access_token=demo.PLAID_ACCESS_TOKENS[slug])
    )
    plaid_wire.check("/investments/holdings/get")

    institution = data.INSTITUTIONS[slug]
    assert response.item.institution_name == institution.name
    assert [a.mask for a in response.accounts] == [t.mask for t in institution.accounts]
    securities = {s.security_id: s for s in response.securities}
    tickers = {securities[h.security_id].ticker_symbol for h in response.holdings}
    expected = {h.ticker for t in institution.accounts for h in t.holdings}
    expected |= {f"CUR:{currency}" for t in institution.accounts for currency, _ in t.cash}
    assert tickers == expected
    assert all(s.figi is None for s in response.securities)


def test_plaid_accounts_item_institution_and_refresh(plaid_wire: PlaidWire):
    client = plaid_wire.client
    accounts = client.accounts_get(AccountsGetRequest(access_token=MERRILL_TOKEN))
    plaid_wire.check("/accounts/get")
    assert [a.account_id for a in accounts.accounts] == [
        data.PLAID_ACCOUNT_IDS["merrill-cma"],
        data.PLAID_ACCOUNT_IDS["merrill-ira"],
    ]

    item = client.item_get(ItemGetRequest(access_token=MERRILL_TOKEN))
    plaid_wire.check("/item/get")
    assert item.item.item_id == data.PLAID_ITEM_IDS["merrill-lynch"]

    institution = client.institutions_get_by_id(
        InstitutionsGetByIdRequest(
            institution_id=item.item.institution_id, country_codes=[CountryCode("US")]
        )
    )
    plaid_wire.check("/institutions/get_by_id")
    assert institution.institution.name == "Merrill Lynch"
    assert institution.institution.connection_availability.value == "SUPPORTED"

    client.investments_refresh(InvestmentsRefreshRequest(access_token=MERRILL_TOKEN))
    plaid_wire.check("/investments/refresh")


def _hosted_link_request(**extra) -> LinkTokenCreateRequest:
    return LinkTokenCreateRequest(
        client_name="Brokerage Hub",
        language="en",
        country_codes=[CountryCode("US")],
        user=LinkTokenCreateRequestUser(client_user_id="demo-user"),
        products=[Products("investments")],
        hosted_link=LinkTokenCreateHostedLink(),
        **extra,
    )


def test_plaid_hosted_link_flow_yields_a_working_new_item(
    emulator: EmulatorHandle, plaid_wire: PlaidWire
):
    client = plaid_wire.client
    created = client.link_token_create(_hosted_link_request())
    plaid_wire.check("/link/token/create")
    assert created.hosted_link_url == f"{emulator.plaid_url}/hosted-link/{created.link_token}"
    page = requests.get(created.hosted_link_url, timeout=5)
    assert page.status_code == 200
    assert "Interactive Brokers" in page.text

    pending = client.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    plaid_wire.check("/link/token/get")
    assert not pending.get("link_sessions")

    assert emulator.controls is not None
    public_token = emulator.controls.complete_link(created.link_token, "interactive-brokers")
    finished = client.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    plaid_wire.check("/link/token/get")
    results = finished.link_sessions[0].results.item_add_results
    assert [r.public_token for r in results] == [public_token]

    exchanged = client.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=public_token)
    )
    plaid_wire.check("/item/public_token/exchange")
    holdings = client.investments_holdings_get(
        InvestmentsHoldingsGetRequest(access_token=exchanged.access_token)
    )
    # Same positions as the seeded IBKR Item, under new account ids (a new Item).
    assert len(holdings.holdings) == len(data.IBKR_POSITIONS) + len(data.IBKR_CASH)
    assert holdings.accounts[0].account_id != data.PLAID_ACCOUNT_IDS["ibkr-individual"]
    assert holdings.accounts[0].mask == data.IBKR_ACCOUNT_MASK

    # A public token is single-use.
    with pytest.raises(plaid.ApiException) as reused:
        client.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=public_token))
    plaid_wire.check("/item/public_token/exchange", "default")
    assert json.loads(reused.value.body)["error_code"] == "INVALID_PUBLIC_TOKEN"


def test_plaid_hosted_link_page_completes_the_session(emulator: EmulatorHandle):
    client = plaid_client(emulator)
    created = client.link_token_create(_hosted_link_request())
    answer = requests.post(
        created.hosted_link_url, data={"institution": "merrill-lynch"}, timeout=5
    )
    assert answer.status_code == 200
    sessions = client.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    institution = sessions.link_sessions[0].results.item_add_results[0].institution
    assert institution.name == "Merrill Lynch"


def test_plaid_sandbox_public_token_and_item_remove(plaid_wire: PlaidWire):
    client = plaid_wire.client
    created = client.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(
            institution_id=data.MERRILL_LYNCH.plaid_institution_id,
            initial_products=[Products("investments")],
        )
    )
    plaid_wire.check("/sandbox/public_token/create")
    exchanged = client.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=created.public_token)
    )

    client.item_remove(ItemRemoveRequest(access_token=exchanged.access_token))
    plaid_wire.check("/item/remove")
    with pytest.raises(plaid.ApiException) as removed:
        client.accounts_get(AccountsGetRequest(access_token=exchanged.access_token))
    plaid_wire.check("/accounts/get", "default")
    assert removed.value.status == 400
    assert json.loads(removed.value.body)["error_code"] == "ITEM_NOT_FOUND"
    # The seeded Items are untouched.
    client.accounts_get(AccountsGetRequest(access_token=MERRILL_TOKEN))


# --- SnapTrade ----------------------------------------------------------------------


def test_snaptrade_status_register_and_login(emulator: EmulatorHandle, snap_wire: SnapWire):
    snap = snap_wire.client
    status = snap.api_status.check()
    snap_wire.check("get", "/")
    assert status.body["online"] is True

    registered = snap.authentication.register_snap_trade_user(user_id="new-user@example.com")
    snap_wire.check("post", "/snapTrade/registerUser")
    assert registered.body["userId"] == "new-user@example.com"
    with pytest.raises(SnapTradeApiException) as duplicate:
        snap.authentication.register_snap_trade_user(user_id="new-user@example.com")
    assert duplicate.value.status == 400
    assert set(duplicate.value.body) == {"detail", "status_code", "code"}

    login = snap.authentication.login_snap_trade_user(
        connection_type="trade", reconnect=IBKR_AUTH, **DEMO_USER
    )
    snap_wire.check("post", "/snapTrade/login")
    assert login.body["redirectURI"].startswith(f"{emulator.snaptrade_url}/portal/")
    portal = requests.get(login.body["redirectURI"], timeout=5)
    assert portal.status_code == 200


def test_snaptrade_accounts_positions_and_balances(snap_wire: SnapWire):
    snap = snap_wire.client
    accounts = snap.account_information.list_user_accounts(**DEMO_USER)
    snap_wire.check("get", "/accounts")
    assert {a["id"] for a in accounts.body} == {IBKR_ACCOUNT, SCHWAB_ACCOUNT}

    for account_id in (IBKR_ACCOUNT, SCHWAB_ACCOUNT):
        snap.account_information.get_all_account_positions(account_id=account_id, **DEMO_USER)
        snap_wire.check("get", "/accounts/{accountId}/positions/all")
        snap.account_information.get_user_account_balance(account_id=account_id, **DEMO_USER)
        snap_wire.check("get", "/accounts/{accountId}/balances")


def test_snaptrade_authorizations(snap_wire: SnapWire):
    snap = snap_wire.client
    listed = snap.connections.list_brokerage_authorizations(**DEMO_USER)
    snap_wire.check("get", "/authorizations")
    assert {(a["brokerage"]["name"], a["type"]) for a in listed.body} == {
        ("Interactive Brokers", "trade"),
        ("Charles Schwab", "trade"),
    }
    detail = snap.connections.detail_brokerage_authorization(
        authorization_id=SCHWAB_AUTH, **DEMO_USER
    )
    snap_wire.check("get", "/authorizations/{authorizationId}")
    assert detail.body["disabled"] is False


def test_snaptrade_portal_reconnect_and_new_connection(emulator: EmulatorHandle):
    snap = snaptrade_client(emulator)
    assert emulator.controls is not None
    emulator.controls.disable_connection(IBKR_AUTH)
    session = snap.authentication.login_snap_trade_user(reconnect=IBKR_AUTH, **DEMO_USER)
    assert (
        emulator.controls.complete_connection(session.body["sessionId"], "interactive-brokers")
        == IBKR_AUTH
    )
    detail = snap.connections.detail_brokerage_authorization(
        authorization_id=IBKR_AUTH, **DEMO_USER
    )
    assert detail.body["disabled"] is False

    session = snap.authentication.login_snap_trade_user(connection_type="read", **DEMO_USER)
    new_auth = emulator.controls.complete_connection(session.body["sessionId"], "charles-schwab")
    accounts = snap.account_information.list_user_accounts(**DEMO_USER).body
    new_accounts = [a for a in accounts if a["brokerage_authorization"] == new_auth]
    assert len(new_accounts) == 1
    assert new_accounts[0]["id"] != SCHWAB_ACCOUNT  # a new connection means new account ids


def test_snaptrade_trading_flow(snap_wire: SnapWire):
    trading = snap_wire.client
    symbols = trading.reference_data.symbol_search_user_account(
        account_id=SCHWAB_ACCOUNT, substring="COST", **DEMO_USER
    )
    snap_wire.check("post", "/accounts/{accountId}/symbols")
    symbol = next(s for s in symbols.body if s["symbol"] == "COST")

    impact = trading.trading.get_order_impact(
        account_id=SCHWAB_ACCOUNT,
        action="BUY",
        universal_symbol_id=symbol["id"],
        order_type="Limit",
        time_in_force="Day",
        units=2.0,
        price=800.0,
        **DEMO_USER,
    )
    snap_wire.check("post", "/trade/impact")
    order = trading.trading.place_order(
        trade_id=impact.body["trade"]["id"], wait_to_confirm=True, **DEMO_USER
    )
    snap_wire.check("post", "/trade/{tradeId}")
    assert order.body["status"] == "ACCEPTED"
    assert order.body["universal_symbol"]["symbol"] == "COST"


def _impact(snap, account_id: str, symbol_id: str):
    return snap.trading.get_order_impact(
        account_id=account_id,
        action="BUY",
        universal_symbol_id=symbol_id,
        order_type="Market",
        time_in_force="Day",
        units=1.0,
        **DEMO_USER,
    )


def test_snaptrade_trade_id_expires_after_five_minutes(
    emulator: EmulatorHandle, clock: OffsetClock
):
    snap = snaptrade_client(emulator)
    symbol_id = next(
        s["id"]
        for s in snap.reference_data.symbol_search_user_account(
            account_id=SCHWAB_ACCOUNT, substring="SCHB", **DEMO_USER
        ).body
    )
    # The SDK stamps real time and SnapTrade accepts stamps up to 5 minutes off,
    # so the 5-minute trade lifetime is crossed in two steps of the emulator clock.
    clock.offset = -200
    fresh = _impact(snap, SCHWAB_ACCOUNT, symbol_id).body["trade"]["id"]
    stale = _impact(snap, SCHWAB_ACCOUNT, symbol_id).body["trade"]["id"]
    clock.offset = 50  # 250 s after creation: still valid
    assert snap.trading.place_order(trade_id=fresh, **DEMO_USER).body["status"] == "EXECUTED"
    clock.offset = 150  # 350 s after creation
    with pytest.raises(SnapTradeApiException) as expired:
        snap.trading.place_order(trade_id=stale, **DEMO_USER)
    assert expired.value.status == 400
    assert "expired" in expired.value.body["detail"]


def test_snaptrade_trading_permission_switch(emulator: EmulatorHandle):
    snap = snaptrade_client(emulator)
    symbol_id = data.stable_uuid("symbol", "SPY")
    with pytest.raises(SnapTradeApiException) as refused:
        _impact(snap, IBKR_ACCOUNT, symbol_id)
    assert refused.value.status == 403
    assert refused.value.body["code"] == "1020"

    assert emulator.controls is not None
    emulator.controls.set_trading_permission(IBKR_AUTH, True)
    assert _impact(snap, IBKR_ACCOUNT, symbol_id).body["trade"]["account"] == IBKR_ACCOUNT


# --- the seeded data ----------------------------------------------------------------


def test_ibkr_is_the_same_portfolio_on_both_providers(emulator: EmulatorHandle):
    holdings = plaid_client(emulator).investments_holdings_get(
        InvestmentsHoldingsGetRequest(access_token=IBKR_TOKEN)
    )
    securities = {s.security_id: s for s in holdings.securities}
    plaid_positions = {}
    plaid_cash = {}
    for h in holdings.holdings:
        security = securities[h.security_id]
        if security.type == "cash":
            plaid_cash[h.iso_currency_code] = h.quantity
        else:
            plaid_positions[security.ticker_symbol] = h.quantity

    snap = snaptrade_client(emulator)
    positions = snap.account_information.get_all_account_positions(
        account_id=IBKR_ACCOUNT, **DEMO_USER
    ).body["results"]
    snap_positions = {p["instrument"]["symbol"]: float(p["units"]) for p in positions}
    balances = snap.account_information.get_user_account_balance(
        account_id=IBKR_ACCOUNT, **DEMO_USER
    ).body
    snap_cash = {b["currency"]["code"]: b["cash"] for b in balances}
    snap_account = next(
        a
        for a in snap.account_information.list_user_accounts(**DEMO_USER).body
        if a["id"] == IBKR_ACCOUNT
    )

    assert plaid_positions == snap_positions == dict(data.IBKR_POSITIONS)
    assert plaid_cash == snap_cash == data.IBKR_CASH
    assert holdings.accounts[0].mask == snap_account["number"][-4:] == data.IBKR_ACCOUNT_MASK


def test_demo_data_is_broad_enough():
    kinds = {h.kind for a in data.ALL_ACCOUNTS for h in a.holdings}
    currencies = {currency for a in data.ALL_ACCOUNTS for currency, _ in a.cash}
    assert data.POSITION_COUNT + data.CASH_BALANCE_COUNT >= 30
    assert kinds == {"equity", "etf", "mutual fund", "money market"}
    assert {"USD", "EUR"} <= currencies
    assert "EUR" in data.IBKR_CASH
