"""The emulator answers like the real providers: every endpoint is called through the
official SDK over loopback HTTP, and the JSON on the wire is checked against the
provider's contract. SnapTrade's is its own OpenAPI spec (``tests/specs``), string
formats included. Plaid's is the plaid-python SDK's generated models: each answer is
parsed strictly into the operation's response model (or Plaid's error object), and
an enum value or field the model does not know fails too.

The checks are only evidence if they can fail: the last section shows each one
refusing an answer that breaks it."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import socket
from collections.abc import Iterator
from datetime import date
from typing import Any

import plaid
import pytest
import requests
from jsonschema import ValidationError
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest
from plaid.model.investments_refresh_request import InvestmentsRefreshRequest
from plaid.model.investments_transactions_get_request import InvestmentsTransactionsGetRequest
from plaid.model.investments_transactions_get_request_options import (
    InvestmentsTransactionsGetRequestOptions,
)
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.item_webhook_update_request import ItemWebhookUpdateRequest
from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.link_token_get_request import LinkTokenGetRequest
from plaid.model.products import Products
from plaid.model.sandbox_item_fire_webhook_request import SandboxItemFireWebhookRequest
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.webhook_type import WebhookType
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest
from snaptrade_client import ApiException as SnapTradeApiException

from sandbox import data, demo
from sandbox.server import EmulatorHandle, start_emulator
from tests.emulator_fixtures import (
    DEMO_USER,
    SNAPTRADE_SPEC,
    SPECS_DIR,
    OffsetClock,
    PlaidModels,
    SpecValidator,
    WireRecorder,
    is_public_web_url,
    plaid_client,
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
def snap_schema() -> SpecValidator:
    return snaptrade_spec()


class PlaidWire:
    """A Plaid SDK client plus the raw answers it received."""

    def __init__(self, handle: EmulatorHandle, models: PlaidModels) -> None:
        self.client = plaid_client(handle)
        self.recorder = WireRecorder.on_plaid(self.client)
        self.models = models

    def check(self, path: str) -> dict:
        """The last answer, once it has parsed strictly into the SDK's model for ``path``."""
        status, _ = self.recorder.answers[-1]
        answer = self.recorder.last_json()
        problems = self.models.answer_problems(path, status, answer)
        assert not problems, "\n".join(problems)
        return answer


class SnapWire:
    """A SnapTrade SDK client plus the raw answers it received."""

    def __init__(self, handle: EmulatorHandle, schema: SpecValidator) -> None:
        self.client = snaptrade_client(handle)
        self.recorder = WireRecorder.on_snaptrade(self.client)
        self.schema = schema

    def check(self, method: str, path: str, status: int = 200):
        answer = self.recorder.last_json()
        self.schema.validate(method, path, status, answer)
        return answer


@pytest.fixture
def plaid_wire(emulator: EmulatorHandle) -> PlaidWire:
    return PlaidWire(emulator, PlaidModels())


@pytest.fixture
def snap_wire(emulator: EmulatorHandle, snap_schema: SpecValidator) -> SnapWire:
    return SnapWire(emulator, snap_schema)


# --- Plaid ------------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(demo.PLAID_ACCESS_TOKENS))
def test_plaid_holdings_fit_the_sdk_models_and_the_seeded_data(plaid_wire: PlaidWire, slug: str):
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
    # A security's FIGI is the one SnapTrade sends for it too; cash has none.
    for security in response.securities:
        if security.ticker_symbol.startswith("CUR:"):
            assert security.figi is None
        else:
            assert security.figi == data.demo_figi(security.ticker_symbol)


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
    plaid_wire.check("/item/public_token/exchange")
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
    plaid_wire.check("/accounts/get")
    assert removed.value.status == 400
    assert json.loads(removed.value.body)["error_code"] == "ITEM_NOT_FOUND"
    # The seeded Items are untouched.
    client.accounts_get(AccountsGetRequest(access_token=MERRILL_TOKEN))


def test_plaid_webhook_operations_fit_the_sdk_models(
    emulator: EmulatorHandle, plaid_wire: PlaidWire
):
    client = plaid_wire.client
    assert emulator.controls is not None
    kid = emulator.controls.rotate_plaid_webhook_key()
    answer = client.webhook_verification_key_get(WebhookVerificationKeyGetRequest(key_id=kid))
    key = plaid_wire.check("/webhook_verification_key/get")["key"]
    assert answer.key.kid == kid
    assert {k: key[k] for k in ("alg", "crv", "kty", "use", "expired_at")} == {
        "alg": "ES256",
        "crv": "P-256",
        "kty": "EC",
        "use": "sig",
        "expired_at": None,
    }
    with pytest.raises(plaid.ApiException):
        client.webhook_verification_key_get(WebhookVerificationKeyGetRequest(key_id="unknown"))
    unknown = plaid_wire.check("/webhook_verification_key/get")
    assert unknown["error_code"] == "INVALID_WEBHOOK_VERIFICATION_KEY_ID"

    # A loopback port nothing listens at: the webhooks are attempted and refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}/webhooks"
    updated = client.item_webhook_update(
        ItemWebhookUpdateRequest(access_token=MERRILL_TOKEN, webhook=nowhere)
    )
    plaid_wire.check("/item/webhook/update")
    assert updated.item.webhook == nowhere
    fired = client.sandbox_item_fire_webhook(
        SandboxItemFireWebhookRequest(
            access_token=MERRILL_TOKEN,
            webhook_code="DEFAULT_UPDATE",
            webhook_type=WebhookType("HOLDINGS"),
        )
    )
    plaid_wire.check("/sandbox/item/fire_webhook")
    assert fired.webhook_fired is True
    with pytest.raises(plaid.ApiException):  # the IBKR Item has no webhook URL
        client.sandbox_item_fire_webhook(
            SandboxItemFireWebhookRequest(access_token=IBKR_TOKEN, webhook_code="LOGIN_REPAIRED")
        )
    assert plaid_wire.check("/sandbox/item/fire_webhook")["error_code"] == (
        "SANDBOX_WEBHOOK_INVALID"
    )
    acknowledged, holdings = emulator.controls.wait_for_webhooks(2)
    assert (acknowledged.url, acknowledged.status) == (nowhere, None)
    assert holdings.payload()["webhook_type"] == "HOLDINGS"


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


# --- activity history ---------------------------------------------------------------

TRANSACTIONS_PATH = "/investments/transactions/get"
ACTIVITIES_PATH = "/accounts/{accountId}/activities"


def _transactions(client, token: str, **options):
    return client.investments_transactions_get(
        InvestmentsTransactionsGetRequest(
            access_token=token,
            start_date=date(2000, 1, 1),
            end_date=date(2100, 1, 1),
            options=InvestmentsTransactionsGetRequestOptions(**options),
        )
    )


@pytest.mark.parametrize("slug", sorted(demo.PLAID_ACCESS_TOKENS))
def test_plaid_investment_transactions_fit_the_sdk_models(plaid_wire: PlaidWire, slug: str):
    token = demo.PLAID_ACCESS_TOKENS[slug]
    response = _transactions(plaid_wire.client, token, count=500)
    answer = plaid_wire.check(TRANSACTIONS_PATH)
    assert response.total_investment_transactions == len(response.investment_transactions)
    assert response.item.item_id == data.PLAID_ITEM_IDS[slug]
    assert [a.mask for a in response.accounts] == [t.mask for t in data.INSTITUTIONS[slug].accounts]
    kinds = {(t.type.value, t.subtype.value) for t in response.investment_transactions}
    expected = {("buy", "buy"), ("sell", "sell"), ("cash", "dividend"), ("cash", "interest")}
    expected |= {("cash", "deposit")} | (
        {("fee", "account fee")} if slug == "merrill-lynch" else set()
    )
    assert kinds == expected
    # A page's securities are the holdings' securities, as /investments/holdings/get sends them.
    plaid_wire.client.investments_holdings_get(InvestmentsHoldingsGetRequest(access_token=token))
    held = {
        s["security_id"]: s for s in plaid_wire.check("/investments/holdings/get")["securities"]
    }
    assert answer["securities"]
    assert all(held[s["security_id"]] == s for s in answer["securities"])

    page = _transactions(plaid_wire.client, token, count=7, offset=3)
    plaid_wire.check(TRANSACTIONS_PATH)
    assert [t.investment_transaction_id for t in page.investment_transactions] == [
        t.investment_transaction_id for t in response.investment_transactions[3:10]
    ]


def test_snaptrade_activities_fit_the_spec(snap_wire: SnapWire):
    snap = snap_wire.client.account_information
    for account_id in (IBKR_ACCOUNT, SCHWAB_ACCOUNT):
        activities = snap.get_account_activities(
            account_id=account_id,
            start_date=date(2000, 1, 1),
            end_date=date(2100, 1, 1),
            offset=0,
            limit=1000,
            type="BUY,SELL,DIVIDEND,INTEREST,FEE,CONTRIBUTION,WITHDRAWAL",
            **DEMO_USER,
        )
        answer = snap_wire.check("get", ACTIVITIES_PATH)
        assert activities.body["pagination"]["total"] == len(activities.body["data"])
        positions = snap.get_all_account_positions(account_id=account_id, **DEMO_USER)
        instruments = {
            p["instrument"]["symbol"]: p["instrument"] for p in positions.body["results"]
        }
        for activity in answer["data"]:
            symbol = activity["symbol"]
            if symbol is None:
                assert activity["type"] in ("INTEREST", "FEE", "CONTRIBUTION", "WITHDRAWAL")
                continue
            # The universal symbol of the position it belongs to: same id and FIGI.
            instrument = instruments[symbol["symbol"]]
            assert symbol["id"] == instrument["id"]
            assert symbol["figi_code"] == instrument["figi_instrument"]["figi_code"]
    # An account the user does not own: a 404 in the error shape SnapTrade documents.
    with pytest.raises(SnapTradeApiException) as refused:
        snap.get_account_activities(account_id=data.stable_uuid("unknown"), **DEMO_USER)
    assert refused.value.status == 404
    snap_wire.check("get", ACTIVITIES_PATH, 404)


def test_the_plaid_transactions_check_refuses_a_broken_answer(plaid_wire: PlaidWire):
    _transactions(plaid_wire.client, IBKR_TOKEN, count=5)
    answer = plaid_wire.check(TRANSACTIONS_PATH)
    for break_it, named in (
        (_set("investment_transactions.0.subtype", "purchase"), "purchase"),
        (_set("investment_transactions.0.amount", "12.50"), "amount"),
        (_set("investment_transactions.0.fees", _REMOVE), "fees"),
        (_set("total_investment_transactions", _REMOVE), "total_investment_transactions"),
    ):
        broken = copy.deepcopy(answer)
        break_it(broken)
        problems = plaid_wire.models.answer_problems(TRANSACTIONS_PATH, 200, broken)
        assert any(named in problem for problem in problems), problems


def test_the_snaptrade_activities_check_refuses_a_broken_answer(snap_wire: SnapWire):
    snap_wire.client.account_information.get_account_activities(
        account_id=IBKR_ACCOUNT, limit=5, **DEMO_USER
    )
    answer = snap_wire.check("get", ACTIVITIES_PATH)
    for path, value in (
        ("pagination.total", "12"),
        ("data.0.trade_date", "2026-11-02"),
        ("data.0.amount", "58.50"),
    ):
        broken = copy.deepcopy(answer)
        _set(path, value)(broken)
        with pytest.raises(ValidationError):
            snap_wire.schema.validate("get", ACTIVITIES_PATH, 200, broken)


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


# --- the checks can fail --------------------------------------------------------------


def test_the_snaptrade_spec_in_the_repo_is_the_upstream_file_its_readme_records():
    readme = (SPECS_DIR / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"^sha256: ([0-9a-f]{64})$", readme, re.MULTILINE)
    assert recorded, "tests/specs/README.md records no sha256 line"
    assert hashlib.sha256(SNAPTRADE_SPEC.read_bytes()).hexdigest() == recorded.group(1)
    licence = (SPECS_DIR / "snaptrade-sdks.LICENSE").read_text(encoding="utf-8")
    assert "Permission is hereby granted, free of charge" in licence  # MIT, kept beside it


# For each format the SnapTrade spec names: a value that has it, and one that does not.
FORMAT_EXAMPLES: dict[str, tuple[Any, Any]] = {
    "date-time": ("2026-11-02T14:30:00Z", "2026-11-02 at 14:30"),
    "date": ("2026-11-02", "2026-02-30"),
    "uuid": ("2bcd7cc3-e922-4976-bce1-9858296801c3", "2bcd7cc3e9224976bce19858296801c3"),
    "decimal": ("1234.56", "1,234.56"),
    "int32": (2**31 - 1, 2**31),
    "url": (
        "https://passiv-brokerage-logos.s3.ca-central-1.amazonaws.com/robinhood-logo.png",
        "http://127.0.0.1:8765/snaptrade/logos/robinhood.png",
    ),
}


def _formats_named_in(node: Any) -> set[str]:
    if isinstance(node, list):
        return {name for item in node for name in _formats_named_in(item)}
    if not isinstance(node, dict):
        return set()
    named = {node["format"]} if isinstance(node.get("format"), str) else set()
    return named.union(*(_formats_named_in(value) for value in node.values()))


def test_every_format_the_snaptrade_spec_names_is_checked(snap_schema: SpecValidator):
    # jsonschema passes a value whose format it does not know: none may be unknown.
    named = _formats_named_in(snap_schema.spec)
    assert "url" in named
    assert named <= set(snap_schema.format_checker.checkers)
    assert named <= set(FORMAT_EXAMPLES)  # each one is shown to refuse a bad value below


@pytest.mark.parametrize("fmt", sorted(FORMAT_EXAMPLES))
def test_each_format_accepts_a_good_value_and_refuses_a_bad_one(
    snap_schema: SpecValidator, fmt: str
):
    good, bad = FORMAT_EXAMPLES[fmt]
    assert snap_schema.format_checker.conforms(good, fmt)
    assert not snap_schema.format_checker.conforms(bad, fmt)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/snaptrade/logos/robinhood.png",  # the emulator's own address
        "http://127.9.9.9/logo.png",
        "http://localhost:8765/logo.png",
        "http://logos.localhost/logo.png",
        "http://[::1]:8765/logo.png",
        "http://[::ffff:127.0.0.1]/logo.png",
        "http://10.1.2.3/logo.png",
        "http://172.16.0.1/logo.png",
        "http://172.31.255.254/logo.png",
        "http://192.168.1.20/logo.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/logo.png",
        "http://0.0.0.0/logo.png",
        "http://emulator:8765/logo.png",  # one label: no public name
        "ftp://passiv-brokerage-logos.s3.amazonaws.com/logo.png",
        "file:///etc/passwd",
        "//passiv-brokerage-logos.s3.amazonaws.com/logo.png",
        "https://passiv brokerage.com/logo.png",
        "https://example.com:port/logo.png",
        "logo.png",
    ],
)
def test_the_url_format_refuses_loopback_private_and_non_web_urls(url: str):
    assert not is_public_web_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://passiv-brokerage-logos.s3.ca-central-1.amazonaws.com/robinhood-logo.png",
        "https://www.schwab.com",
        "https://example.com:8443/logo.png?size=2#top",
        "http://8.8.8.8/logo.png",
        "http://172.32.0.1/logo.png",  # just outside 172.16.0.0/12
        "http://[2606:4700::1111]/logo.png",
    ],
)
def test_the_url_format_accepts_public_web_urls(url: str):
    assert is_public_web_url(url)


def test_a_brokerage_logo_on_the_emulators_loopback_address_fails_the_spec(snap_wire: SnapWire):
    snap_wire.client.connections.detail_brokerage_authorization(
        authorization_id=SCHWAB_AUTH, **DEMO_USER
    )
    answer = snap_wire.check("get", "/authorizations/{authorizationId}")
    answer["brokerage"]["aws_s3_logo_url"] = "http://127.0.0.1:8765/snaptrade/logos/schwab.png"
    with pytest.raises(ValidationError) as refused:
        snap_wire.schema.validate("get", "/authorizations/{authorizationId}", 200, answer)
    assert refused.value.validator == "format"
    assert list(refused.value.absolute_path) == ["brokerage", "aws_s3_logo_url"]


_REMOVE = object()  # as a value for _set: delete the field


def _set(path: str, value: Any):
    """Break an answer by setting the field at ``path`` (keys and list indexes, dotted)."""

    def apply(answer: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = answer
        for part in parents:
            target = target[part]
        if value is _REMOVE:
            del target[last]
        else:
            target[last] = value

    return apply


# Ways to break a holdings answer, and a word each problem report must name.
PLAID_HOLDINGS_MISTAKES = {
    "a required field is missing": (_set("request_id", _REMOVE), "request_id"),
    "a nested model lacks a required field": (
        _set("securities.0.security_id", _REMOVE),
        "security_id",
    ),
    "a number is sent as a string": (_set("holdings.0.quantity", "120"), "quantity"),
    "a non-nullable field is null": (_set("accounts.0.name", None), "'name'"),
    "a date is not a date": (
        _set("holdings.0.institution_price_as_of", "soon"),
        "institution_price_as_of",
    ),
    "an enum value the SDK does not know": (_set("accounts.0.type", "savings"), "savings"),
    "a field the model does not declare": (
        _set("item.institution_nme", "Merrill"),
        "institution_nme",
    ),
    "a field no part of a composed model declares": (
        _set("accounts.0.nick_name", "Play money"),
        "nick_name",
    ),
}


@pytest.mark.parametrize("mistake", sorted(PLAID_HOLDINGS_MISTAKES))
def test_the_plaid_answer_check_refuses_an_answer_that_breaks_the_sdk_model(
    plaid_wire: PlaidWire, mistake: str
):
    plaid_wire.client.investments_holdings_get(
        InvestmentsHoldingsGetRequest(access_token=MERRILL_TOKEN)
    )
    answer = plaid_wire.check("/investments/holdings/get")
    break_it, named = PLAID_HOLDINGS_MISTAKES[mistake]
    broken = copy.deepcopy(answer)
    break_it(broken)
    problems = plaid_wire.models.answer_problems("/investments/holdings/get", 200, broken)
    assert any(named in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("mistake", "named"),
    [
        (_set("error_code", _REMOVE), "error_code"),
        (_set("error_type", "OOPS_ERROR"), "OOPS_ERROR"),
        (_set("display_message", 404), "display_message"),
    ],
    ids=["missing error_code", "unknown error_type", "number as display_message"],
)
def test_the_plaid_error_check_refuses_an_error_that_breaks_plaids_error_object(
    plaid_wire: PlaidWire, mistake: Any, named: str
):
    with pytest.raises(plaid.ApiException):
        plaid_wire.client.accounts_get(AccountsGetRequest(access_token="access-unknown"))
    error = plaid_wire.check("/accounts/get")
    assert error["error_code"] == "INVALID_ACCESS_TOKEN"
    mistake(error)
    problems = plaid_wire.models.answer_problems("/accounts/get", 400, error)
    assert any(named in problem for problem in problems), problems
