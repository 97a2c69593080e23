"""The emulator sends webhooks signed exactly as Plaid and SnapTrade sign theirs.

A tiny receiver (``http.server`` on a free loopback port) takes the deliveries. Plaid's are
verified with PyJWT against the key fetched through the Plaid SDK
(``webhook_verification_key_get``) and parsed strictly into plaid-python's webhook models;
SnapTrade's signature is recomputed with the consumer key. The emulator's clock is a
stopped one, far from the wall clock, so "signed with the emulator's time" is an equality.
Nothing sleeps: ``wait_for_webhooks`` waits on a condition until the deliveries are made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import plaid
import pytest
import requests
from openapi_schema_validator import OAS30ReadValidator
from plaid.model.country_code import CountryCode
from plaid.model.holdings_default_update_webhook import HoldingsDefaultUpdateWebhook
from plaid.model.investments_default_update_webhook import InvestmentsDefaultUpdateWebhook
from plaid.model.investments_historical_update_webhook import InvestmentsHistoricalUpdateWebhook
from plaid.model.item_error_webhook import ItemErrorWebhook
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_login_repaired_webhook import ItemLoginRepairedWebhook
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_webhook_update_request import ItemWebhookUpdateRequest
from plaid.model.link_session_finished_webhook import LinkSessionFinishedWebhook
from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.link_token_get_request import LinkTokenGetRequest
from plaid.model.pending_disconnect_webhook import PendingDisconnectWebhook
from plaid.model.pending_expiration_webhook import PendingExpirationWebhook
from plaid.model.products import Products
from plaid.model.sandbox_item_fire_webhook_request import SandboxItemFireWebhookRequest
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.sandbox_public_token_create_request_options import (
    SandboxPublicTokenCreateRequestOptions,
)
from plaid.model.user_permission_revoked_webhook import UserPermissionRevokedWebhook
from plaid.model.webhook_type import WebhookType
from plaid.model.webhook_update_acknowledged_webhook import WebhookUpdateAcknowledgedWebhook
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

from sandbox import data, demo
from sandbox.faults import Controls
from sandbox.server import EmulatorHandle, start_emulator
from sandbox.webhooks import LATE_SECONDS, WebhookDelivery
from tests.emulator_fixtures import (
    DEMO_USER,
    SNAPTRADE_SPEC,
    PlaidModels,
    load_spec,
    plaid_client,
    snaptrade_client,
    spec_format_checker,
)

MERRILL_TOKEN = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
IBKR_TOKEN = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
SCHWAB_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]
IBKR_BROKERAGE = str(data.INTERACTIVE_BROKERS.snaptrade_brokerage_id)
# The emulator's clock in these tests: stopped, and far from the wall clock.
EMULATOR_NOW = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


class StoppedClock:
    """The emulator's clock: it only moves when a test sets ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    names: tuple[str, ...]  # header names as they came over the wire


class Receiver:
    """A webhook listener on a free loopback port that records every POST, then answers."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        self.gate: threading.Event | None = None  # when set: hold each request until it opens
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.gate is not None:
                    receiver.gate.wait(timeout=10)
                headers = {name.lower(): value for name, value in self.headers.items()}
                names = tuple(self.headers.keys())
                receiver.received.append(Received(self.path, headers, body, names))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    listener = Receiver()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock(EMULATOR_NOW)


@pytest.fixture
def emulator(clock: StoppedClock) -> Iterator[EmulatorHandle]:
    with start_emulator(clock=clock) as handle:
        yield handle


@pytest.fixture
def controls(emulator: EmulatorHandle) -> Controls:
    assert emulator.controls is not None
    return emulator.controls


@pytest.fixture
def plaid_sdk(emulator: EmulatorHandle) -> Any:
    return plaid_client(emulator)


def closed_port_url() -> str:
    """A loopback URL nothing listens at (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def verify_plaid(sdk: Any, headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], str]:
    """The claims of a Plaid delivery, verified as Plaid documents it; and its kid."""
    token = {k.lower(): v for k, v in headers.items()}["plaid-verification"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": header["kid"], "typ": "JWT"}
    answer = sdk.webhook_verification_key_get(
        WebhookVerificationKeyGetRequest(key_id=header["kid"])
    )
    key = jwt.PyJWK(answer.key.to_dict()).key
    claims = jwt.decode(token, key, algorithms=["ES256"], options={"verify_iat": False})
    assert set(claims) == {"iat", "request_body_sha256"}
    assert claims["request_body_sha256"] == hashlib.sha256(body).hexdigest()
    return claims, header["kid"]


def snaptrade_signature(body: bytes, consumer_key: str = demo.SNAPTRADE_CONSUMER_KEY) -> str:
    """SnapTrade's Signature as its docs verify it: over the re-serialized JSON."""
    canonical = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True)
    digest = hmac.new(consumer_key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def fits_plaid_model(model: type, payload: Any) -> None:
    problems = PlaidModels()._problems((model,), payload, "webhook")
    assert not problems, "\n".join(problems)


def fire(sdk: Any, token: str, code: str, kind: str | None = None) -> Any:
    extra = {} if kind is None else {"webhook_type": WebhookType(kind)}
    return sdk.sandbox_item_fire_webhook(
        SandboxItemFireWebhookRequest(access_token=token, webhook_code=code, **extra)
    )


def raw_plaid(emulator: EmulatorHandle, path: str, body: dict[str, Any]) -> requests.Response:
    """A Plaid call without the SDK (which refuses codes the emulator still fires)."""
    return requests.post(
        f"{emulator.plaid_url}{path}",
        json=body,
        headers={"PLAID-CLIENT-ID": demo.PLAID_CLIENT_ID, "PLAID-SECRET": demo.PLAID_SECRET},
        timeout=5,
    )


# --- Plaid ------------------------------------------------------------------------------


def test_a_plaid_webhook_verifies_with_the_key_fetched_through_the_sdk(
    controls: Controls, plaid_sdk: Any, receiver: Receiver, clock: StoppedClock
):
    assert controls.set_plaid_webhook_url(receiver.url(), MERRILL_TOKEN) == 1
    fired = fire(plaid_sdk, MERRILL_TOKEN, "DEFAULT_UPDATE", "HOLDINGS")
    assert fired.webhook_fired is True

    (delivery,) = controls.wait_for_webhooks(1)
    (got,) = receiver.received
    assert (got.body, got.path) == (delivery.body, "/hook")
    assert got.headers["content-type"] == "application/json"
    assert {"Content-Type", "Plaid-Verification"} <= set(got.names)  # spelt as Plaid does
    claims, _ = verify_plaid(plaid_sdk, got.headers, got.body)
    assert claims["iat"] == int(clock.now)  # the emulator's clock, not the wall clock
    # The body is Plaid's indented JSON: only the raw bytes hash to the claim.
    assert got.body != json.dumps(json.loads(got.body)).encode()
    payload = json.loads(got.body)
    fits_plaid_model(HoldingsDefaultUpdateWebhook, payload)
    assert payload == {
        "webhook_type": "HOLDINGS",
        "webhook_code": "DEFAULT_UPDATE",
        "item_id": data.PLAID_ITEM_IDS["merrill-lynch"],
        "error": None,
        "new_holdings": 0,
        "updated_holdings": 17,  # Merrill's two accounts: 15 holdings and 2 cash balances
        "environment": "sandbox",
    }
    assert (delivery.provider, delivery.status, delivery.error) == ("plaid", 200, None)
    assert delivery.event_time == clock.now


NOTICE = (EMULATOR_NOW + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
# webhook_type sent (None: left out), webhook_code, the SDK's model, fields to expect.
PLAID_FIRED: dict[str, tuple[str | None, str, type, dict[str, Any]]] = {
    "holdings": (
        None,
        "DEFAULT_UPDATE",
        HoldingsDefaultUpdateWebhook,
        {"webhook_type": "HOLDINGS"},
    ),
    "investments": (
        "INVESTMENTS_TRANSACTIONS",
        "DEFAULT_UPDATE",
        InvestmentsDefaultUpdateWebhook,
        {"new_investments_transactions": 1, "cancelled_investments_transactions": 0},
    ),
    "historical": (
        "INVESTMENTS_TRANSACTIONS",
        "HISTORICAL_UPDATE",
        InvestmentsHistoricalUpdateWebhook,
        {"webhook_type": "INVESTMENTS_TRANSACTIONS", "cancelled_investments_transactions": 0},
    ),
    "error": ("ITEM", "ERROR", ItemErrorWebhook, {"webhook_type": "ITEM"}),
    "repaired": (None, "LOGIN_REPAIRED", ItemLoginRepairedWebhook, {"webhook_type": "ITEM"}),
    "expiring": (
        None,
        "PENDING_EXPIRATION",
        PendingExpirationWebhook,
        {"consent_expiration_time": NOTICE},
    ),
    "disconnecting": (
        "ITEM",
        "PENDING_DISCONNECT",
        PendingDisconnectWebhook,
        {"reason": "INSTITUTION_TOKEN_EXPIRATION", "disconnect_time": NOTICE},
    ),
    "revoked": ("ITEM", "USER_PERMISSION_REVOKED", UserPermissionRevokedWebhook, {}),
}


@pytest.mark.parametrize("case", sorted(PLAID_FIRED))
def test_every_webhook_plaids_sandbox_fires_fits_the_sdk_model(
    emulator: EmulatorHandle, controls: Controls, receiver: Receiver, case: str
):
    kind, code, model, expected = PLAID_FIRED[case]
    controls.set_plaid_webhook_url(receiver.url(), IBKR_TOKEN)
    request: dict[str, Any] = {"access_token": IBKR_TOKEN, "webhook_code": code}
    if kind is not None:
        request["webhook_type"] = kind
    # Raw HTTP: the SDK's enum has no HISTORICAL_UPDATE or PENDING_EXPIRATION.
    answer = raw_plaid(emulator, "/sandbox/item/fire_webhook", request)
    assert answer.status_code == 200, answer.text
    assert answer.json()["webhook_fired"] is True

    controls.wait_for_webhooks(1)
    payload = json.loads(receiver.received[0].body)
    fits_plaid_model(model, payload)
    assert payload["webhook_code"] == code
    assert payload["item_id"] == data.PLAID_ITEM_IDS["interactive-brokers"]
    assert payload["environment"] == "sandbox"
    assert expected.items() <= payload.items()
    if code == "ERROR":
        assert payload["error"]["error_type"] == "ITEM_ERROR"
        assert payload["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
        assert payload["error"]["error_message"] and payload["error"]["display_message"]
    if case == "historical":  # the whole history of the Item's account
        assert payload["new_investments_transactions"] == len(
            controls.list_activities("ibkr-individual")
        )


def _without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


# Ways to break an INVESTMENTS_TRANSACTIONS payload, and a word each report must name.
PAYLOAD_MISTAKES = {
    # plaid-python 46 (Plaid's spec) spells it "cancelled"; older SDKs said "canceled".
    "the old spelling of cancelled": (
        lambda p: (
            _without(p, "cancelled_investments_transactions")
            | {"canceled_investments_transactions": 0}
        ),
        "cancelled_investments_transactions",
    ),
    "an environment Plaid does not have": (lambda p: p | {"environment": "staging"}, "staging"),
    "no item_id": (lambda p: _without(p, "item_id"), "item_id"),
    "a count as a string": (lambda p: p | {"new_investments_transactions": "1"}, "new_invest"),
}


@pytest.mark.parametrize("mistake", sorted(PAYLOAD_MISTAKES))
def test_the_payload_check_refuses_a_broken_payload(
    controls: Controls, receiver: Receiver, mistake: str
):
    controls.set_plaid_webhook_url(receiver.url(), IBKR_TOKEN)
    controls.fire_plaid_webhook(IBKR_TOKEN, "DEFAULT_UPDATE", "INVESTMENTS_TRANSACTIONS")
    payload = controls.wait_for_webhooks(1)[0].payload()
    fits_plaid_model(InvestmentsDefaultUpdateWebhook, payload)
    break_it, named = PAYLOAD_MISTAKES[mistake]
    problems = PlaidModels()._problems((InvestmentsDefaultUpdateWebhook,), break_it(payload), "w")
    assert any(named in problem for problem in problems), problems


def test_an_item_made_by_sandbox_public_token_create_takes_its_options_webhook(
    controls: Controls, plaid_sdk: Any, receiver: Receiver
):
    created = plaid_sdk.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(
            institution_id=data.MERRILL_LYNCH.plaid_institution_id,
            initial_products=[Products("investments")],
            options=SandboxPublicTokenCreateRequestOptions(webhook=receiver.url("/sandbox")),
        )
    )
    exchanged = plaid_sdk.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=created.public_token)
    )
    assert fire(plaid_sdk, exchanged.access_token, "LOGIN_REPAIRED").webhook_fired is True
    controls.wait_for_webhooks(1)
    assert receiver.received[0].path == "/sandbox"
    assert json.loads(receiver.received[0].body)["item_id"] == exchanged.item_id


def test_the_sdks_own_codes_fire_through_the_sdk(
    controls: Controls, plaid_sdk: Any, receiver: Receiver
):
    controls.set_plaid_webhook_url(receiver.url(), IBKR_TOKEN)
    for code, kind in (("DEFAULT_UPDATE", "INVESTMENTS_TRANSACTIONS"), ("LOGIN_REPAIRED", None)):
        assert fire(plaid_sdk, IBKR_TOKEN, code, kind).webhook_fired is True
    controls.wait_for_webhooks(2)
    kinds = [json.loads(r.body)["webhook_type"] for r in receiver.received]
    assert kinds == ["INVESTMENTS_TRANSACTIONS", "ITEM"]  # in the order they were fired


def test_fire_webhook_is_refused_as_plaid_refuses_it(
    emulator: EmulatorHandle, controls: Controls, plaid_sdk: Any, receiver: Receiver
):
    with pytest.raises(plaid.ApiException) as no_url:
        fire(plaid_sdk, MERRILL_TOKEN, "DEFAULT_UPDATE")
    assert json.loads(no_url.value.body)["error_code"] == "SANDBOX_WEBHOOK_INVALID"

    controls.set_plaid_webhook_url(receiver.url(), MERRILL_TOKEN)
    with pytest.raises(plaid.ApiException) as no_product:
        fire(plaid_sdk, MERRILL_TOKEN, "DEFAULT_UPDATE", "TRANSACTIONS")
    refused = json.loads(no_product.value.body)
    assert (refused["error_type"], refused["error_code"]) == (
        "SANDBOX_ERROR",
        "SANDBOX_PRODUCT_NOT_ENABLED",
    )
    unsupported = raw_plaid(
        emulator,
        "/sandbox/item/fire_webhook",
        {"access_token": MERRILL_TOKEN, "webhook_code": "NEW_ACCOUNTS_AVAILABLE"},
    )
    assert unsupported.status_code == 400
    assert unsupported.json()["error_code"] == "INVALID_FIELD"
    with pytest.raises(ValueError, match="SANDBOX_PRODUCT_NOT_ENABLED"):
        controls.fire_plaid_webhook(MERRILL_TOKEN, "DEFAULT_UPDATE", "AUTH")
    assert controls.webhook_deliveries() == []


def test_item_webhook_update_through_the_sdk_acknowledges_at_the_new_url(
    controls: Controls, plaid_sdk: Any, receiver: Receiver, clock: StoppedClock
):
    old = Receiver()
    try:
        controls.set_plaid_webhook_url(old.url(), MERRILL_TOKEN)
        updated = plaid_sdk.item_webhook_update(
            ItemWebhookUpdateRequest(access_token=MERRILL_TOKEN, webhook=receiver.url("/new"))
        )
        assert updated.item.webhook == receiver.url("/new")
        item = plaid_sdk.item_get(ItemGetRequest(access_token=MERRILL_TOKEN))
        assert item.item.webhook == receiver.url("/new")

        controls.wait_for_webhooks(1)
        (got,) = receiver.received
        assert got.path == "/new"
        claims, _ = verify_plaid(plaid_sdk, got.headers, got.body)
        assert claims["iat"] == int(clock.now)
        payload = json.loads(got.body)
        fits_plaid_model(WebhookUpdateAcknowledgedWebhook, payload)
        assert payload == {
            "webhook_type": "ITEM",
            "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED",
            "item_id": data.PLAID_ITEM_IDS["merrill-lynch"],
            "new_webhook_url": receiver.url("/new"),
            "error": None,
            "environment": "sandbox",
        }
        assert old.received == []

        # null removes the Item's webhook: nothing is acknowledged, nothing can be fired.
        plaid_sdk.item_webhook_update(
            ItemWebhookUpdateRequest(access_token=MERRILL_TOKEN, webhook=None)
        )
        with pytest.raises(plaid.ApiException):
            fire(plaid_sdk, MERRILL_TOKEN, "DEFAULT_UPDATE")
        assert len(controls.webhook_deliveries()) == 1
    finally:
        old.close()


def test_a_finished_hosted_link_session_sends_session_finished_to_the_link_tokens_webhook(
    controls: Controls, plaid_sdk: Any, receiver: Receiver
):
    created = plaid_sdk.link_token_create(
        LinkTokenCreateRequest(
            client_name="Brokerage Hub",
            language="en",
            country_codes=[CountryCode("US")],
            user=LinkTokenCreateRequestUser(client_user_id="demo-user"),
            products=[Products("investments")],
            hosted_link=LinkTokenCreateHostedLink(),
            webhook=receiver.url("/plaid"),
        )
    )
    public_token = controls.complete_link(created.link_token, "interactive-brokers")
    assert public_token is not None

    controls.wait_for_webhooks(1)
    (got,) = receiver.received
    verify_plaid(plaid_sdk, got.headers, got.body)
    payload = json.loads(got.body)
    fits_plaid_model(LinkSessionFinishedWebhook, payload)
    session = plaid_sdk.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    assert payload == {
        "webhook_type": "LINK",
        "webhook_code": "SESSION_FINISHED",
        "status": "SUCCESS",
        "link_session_id": session.link_sessions[0].link_session_id,
        "link_token": created.link_token,
        "public_tokens": [public_token],
        "environment": "sandbox",
    }

    # The Item the session made sends its webhooks to the link token's URL.
    exchanged = plaid_sdk.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=public_token)
    )
    item = plaid_sdk.item_get(ItemGetRequest(access_token=exchanged.access_token))
    assert item.item.webhook == receiver.url("/plaid")
    controls.set_units("ibkr-individual", "TSLA", 16)
    controls.wait_for_webhooks(2)
    change = json.loads(receiver.received[1].body)
    assert (change["webhook_type"], change["item_id"]) == ("HOLDINGS", exchanged.item_id)


def test_key_rotation_signs_with_a_new_kid_and_still_serves_the_old_key(
    controls: Controls, plaid_sdk: Any, receiver: Receiver, clock: StoppedClock
):
    controls.set_plaid_webhook_url(receiver.url())
    fire(plaid_sdk, MERRILL_TOKEN, "DEFAULT_UPDATE")
    controls.wait_for_webhooks(1)
    _, first_kid = verify_plaid(plaid_sdk, receiver.received[0].headers, receiver.received[0].body)

    clock.now += 3600
    new_kid = controls.rotate_plaid_webhook_key()
    fire(plaid_sdk, MERRILL_TOKEN, "DEFAULT_UPDATE")
    controls.wait_for_webhooks(2)
    claims, second_kid = verify_plaid(
        plaid_sdk, receiver.received[1].headers, receiver.received[1].body
    )
    assert second_kid == new_kid != first_kid
    assert claims["iat"] == int(clock.now)

    def key(kid: str) -> Any:
        return plaid_sdk.webhook_verification_key_get(
            WebhookVerificationKeyGetRequest(key_id=kid)
        ).key

    assert key(first_kid).expired_at == int(clock.now)  # expired, still served
    assert key(first_kid).created_at == int(EMULATOR_NOW.timestamp())
    assert key(new_kid).expired_at is None
    assert key(new_kid).created_at == int(clock.now)
    # The first delivery still verifies with its (now expired) key.
    verify_plaid(plaid_sdk, receiver.received[0].headers, receiver.received[0].body)


def test_an_unknown_kid_is_plaids_invalid_input_error(plaid_sdk: Any):
    with pytest.raises(plaid.ApiException) as unknown:
        plaid_sdk.webhook_verification_key_get(WebhookVerificationKeyGetRequest(key_id="nope"))
    error = json.loads(unknown.value.body)
    assert unknown.value.status == 400
    assert (error["error_type"], error["error_code"]) == (
        "INVALID_INPUT",
        "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
    )


def test_emulators_sharing_a_state_file_sign_with_the_same_key(tmp_path: Path, receiver: Receiver):
    state = tmp_path / "emulator-state.json"
    with start_emulator(state_path=state) as first, start_emulator(state_path=state) as second:
        assert first.controls is not None
        first.controls.set_plaid_webhook_url(receiver.url())
        first.controls.fire_plaid_webhook(IBKR_TOKEN, "LOGIN_REPAIRED")
        first.controls.wait_for_webhooks(1)
        got = receiver.received[0]
        verify_plaid(plaid_client(second), got.headers, got.body)  # the other one serves it


# --- SnapTrade --------------------------------------------------------------------------


def test_a_snaptrade_signature_recomputes_with_the_consumer_key(
    clock: StoppedClock, receiver: Receiver
):
    with start_emulator(clock=clock, snaptrade_webhook_url=receiver.url("/snap")) as emulator:
        assert emulator.controls is not None
        queued = emulator.controls.fire_snaptrade_webhook(
            "ACCOUNT_HOLDINGS_UPDATED", account_key="ibkr-individual"
        )
        assert queued == 1
        (delivery,) = emulator.controls.wait_for_webhooks(1)

    (got,) = receiver.received
    assert got.path == "/snap" and got.body == delivery.body
    assert {"Content-Type", "Signature"} <= set(got.names)
    assert got.headers["signature"] == snaptrade_signature(got.body)
    assert got.headers["signature"] != snaptrade_signature(got.body, "another-consumer-key")
    payload = json.loads(got.body)
    # The body is the canonical JSON the signature covers.
    assert got.body == json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    webhook_id = payload.pop("webhookId")
    assert len(webhook_id) == 36
    assert payload == {
        "clientId": demo.SNAPTRADE_CLIENT_ID,
        "eventTimestamp": "2026-11-02T14:30:00.000000+00:00",  # the emulator's clock
        "userId": demo.SNAPTRADE_USER_ID,
        "eventType": "ACCOUNT_HOLDINGS_UPDATED",
        "accountId": data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"],
        "brokerageAuthorizationId": IBKR_AUTH,
        "brokerageId": IBKR_BROKERAGE,
        "details": {
            part: {"success": True, "error": None}
            for part in ("total_value", "positions", "balances", "orders")
        },
    }
    sent = datetime.fromisoformat(json.loads(got.body)["eventTimestamp"])
    assert sent == EMULATOR_NOW


def _snaptrade_base_schema() -> OAS30ReadValidator:
    spec = load_spec(SNAPTRADE_SPEC)
    schema = {
        "allOf": [{"$ref": "#/components/schemas/WebhookBase"}],
        "components": spec["components"],
    }
    return OAS30ReadValidator(schema, format_checker=spec_format_checker())


# event type, fire() arguments, the fields beyond the base ones
SNAPTRADE_EVENTS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "CONNECTION_ADDED": (
        {"connection": "charles-schwab"},
        {"brokerageAuthorizationId", "brokerageId"},
    ),
    "CONNECTION_BROKEN": ({"connection": IBKR_AUTH}, {"brokerageAuthorizationId", "brokerageId"}),
    "CONNECTION_FIXED": (
        {"account_key": "ibkr-individual"},
        {"brokerageAuthorizationId", "brokerageId"},
    ),
    "CONNECTION_DELETED": (
        {"connection": SCHWAB_AUTH},
        {"brokerageAuthorizationId", "brokerageId"},
    ),
    "ACCOUNT_TRANSACTIONS_UPDATED": (
        {"account_key": "schwab-individual"},
        {"accountId", "brokerageAuthorizationId", "brokerageId"},
    ),
    "ACCOUNT_TRANSACTIONS_INITIAL_UPDATE": (
        {"account_key": "ibkr-individual"},
        {"accountId", "brokerageAuthorizationId", "brokerageId"},
    ),
    "ACCOUNT_REMOVED": (
        {"account_key": "ibkr-individual"},
        {"accountId", "brokerageAuthorizationId", "brokerageId"},
    ),
    "NEW_ACCOUNT_AVAILABLE": (
        {"account_key": "schwab-individual"},
        {"accountId", "brokerageAuthorizationId", "brokerageId"},
    ),
    "ACCOUNT_HOLDINGS_UPDATED": (
        {
            "account_key": "ibkr-individual",
            "details": {"positions": {"success": False, "error": "down"}},
        },
        {"accountId", "brokerageAuthorizationId", "brokerageId", "details"},
    ),
    "USER_DELETED": ({}, set()),
}
BASE_FIELDS = {"webhookId", "clientId", "eventTimestamp", "userId", "eventType"}


@pytest.mark.parametrize("event", sorted(SNAPTRADE_EVENTS))
def test_each_snaptrade_event_carries_its_fields(
    controls: Controls, receiver: Receiver, event: str
):
    arguments, extra = SNAPTRADE_EVENTS[event]
    controls.set_snaptrade_webhook_url(receiver.url())
    assert controls.fire_snaptrade_webhook(event, **arguments) == 1
    controls.wait_for_webhooks(1)
    got = receiver.received[0]
    assert got.headers["signature"] == snaptrade_signature(got.body)
    payload = json.loads(got.body)
    _snaptrade_base_schema().validate(payload)
    assert set(payload) == BASE_FIELDS | extra
    assert payload["eventType"] == event
    if "accountId" in extra:
        account = arguments["account_key"]
        assert payload["accountId"] == data.SNAPTRADE_ACCOUNT_IDS[account]
    if "details" in extra:
        assert payload["details"] == arguments["details"]  # as the test gave it


def test_snaptrade_fire_refuses_what_it_cannot_send(controls: Controls, receiver: Receiver):
    with pytest.raises(ValueError, match="no SnapTrade webhook URL"):
        controls.fire_snaptrade_webhook("USER_DELETED")
    controls.set_snaptrade_webhook_url(receiver.url())
    with pytest.raises(ValueError, match="unknown SnapTrade event"):
        controls.fire_snaptrade_webhook("ACCOUNT_EXPLODED", account_key="ibkr-individual")
    with pytest.raises(ValueError, match="account_key"):
        controls.fire_snaptrade_webhook("ACCOUNT_REMOVED", connection=IBKR_AUTH)
    with pytest.raises(ValueError, match="no SnapTrade connection"):
        controls.fire_snaptrade_webhook("CONNECTION_BROKEN", account_key="merrill-cma")
    with pytest.raises(ValueError, match="http or https"):
        controls.set_snaptrade_webhook_url("ftp://example.com/hook")


def test_each_snaptrade_webhook_has_its_own_id(controls: Controls, receiver: Receiver):
    controls.set_snaptrade_webhook_url(receiver.url())
    for _ in range(3):
        controls.fire_snaptrade_webhook("USER_DELETED")
    controls.wait_for_webhooks(3)
    assert len({json.loads(r.body)["webhookId"] for r in receiver.received}) == 3


def test_disabling_a_connection_sends_broken_and_enabling_it_fixed(
    controls: Controls, receiver: Receiver
):
    controls.set_snaptrade_webhook_url(receiver.url())
    controls.disable_connection(IBKR_AUTH)
    controls.disable_connection(IBKR_AUTH)  # no change: no webhook
    controls.disable_connection(IBKR_AUTH, disabled=False)
    controls.wait_for_webhooks(2)
    events = [json.loads(r.body) for r in receiver.received]
    assert [e["eventType"] for e in events] == ["CONNECTION_BROKEN", "CONNECTION_FIXED"]
    assert {e["brokerageAuthorizationId"] for e in events} == {IBKR_AUTH}
    assert {e["brokerageId"] for e in events} == {IBKR_BROKERAGE}


def test_the_connection_portal_sends_connection_added_and_fixed(
    emulator: EmulatorHandle, controls: Controls, receiver: Receiver, clock: StoppedClock
):
    clock.now = float(int(time.time()))  # the SDK stamps its requests with the wall clock
    controls.set_snaptrade_webhook_url(receiver.url())
    snap = snaptrade_client(emulator)
    session = snap.authentication.login_snap_trade_user(**DEMO_USER).body["sessionId"]
    new_auth = controls.complete_connection(session, "charles-schwab")
    controls.disable_connection(IBKR_AUTH)
    again = snap.authentication.login_snap_trade_user(reconnect=IBKR_AUTH, **DEMO_USER)
    controls.complete_connection(again.body["sessionId"], "interactive-brokers")
    controls.wait_for_webhooks(3)
    events = [json.loads(r.body) for r in receiver.received]
    assert [(e["eventType"], e["brokerageAuthorizationId"]) for e in events] == [
        ("CONNECTION_ADDED", new_auth),
        ("CONNECTION_BROKEN", IBKR_AUTH),
        ("CONNECTION_FIXED", IBKR_AUTH),
    ]


# --- changes of the providers' data ---------------------------------------------------------


A_TICKER = {"ibkr-individual": "AMZN", "merrill-cma": "AAPL", "schwab-individual": "V"}


def _both_urls(controls: Controls, receiver: Receiver) -> None:
    controls.set_plaid_webhook_url(receiver.url("/plaid"))
    controls.set_snaptrade_webhook_url(receiver.url("/snaptrade"))


def _events(deliveries: list[WebhookDelivery]) -> list[tuple[str, str, str]]:
    """(provider, event, subject) of each delivery."""
    found = []
    for delivery in deliveries:
        payload = delivery.payload()
        if delivery.provider == "plaid":
            found.append(("plaid", payload["webhook_type"], payload["item_id"]))
        else:
            found.append(("snaptrade", payload["eventType"], payload["accountId"]))
    return found


@pytest.mark.parametrize(
    "change",
    [
        lambda c, account: c.set_units(account, A_TICKER[account], 3),
        lambda c, account: c.set_cost_basis(account, A_TICKER[account], None),
        lambda c, account: c.set_cash(account, "CHF", 100),
    ],
    ids=["set_units", "set_cost_basis", "set_cash"],
)
def test_a_holding_change_sends_each_providers_holdings_event(
    controls: Controls, receiver: Receiver, change: Any
):
    _both_urls(controls, receiver)
    change(controls, "ibkr-individual")  # on both providers
    change(controls, "merrill-cma")  # Plaid only
    change(controls, "schwab-individual")  # SnapTrade only
    deliveries = controls.wait_for_webhooks(4)
    assert _events(deliveries) == [
        ("plaid", "HOLDINGS", data.PLAID_ITEM_IDS["interactive-brokers"]),
        ("snaptrade", "ACCOUNT_HOLDINGS_UPDATED", data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]),
        ("plaid", "HOLDINGS", data.PLAID_ITEM_IDS["merrill-lynch"]),
        ("snaptrade", "ACCOUNT_HOLDINGS_UPDATED", data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]),
    ]
    plaid_event = deliveries[0].payload()
    fits_plaid_model(HoldingsDefaultUpdateWebhook, plaid_event)
    assert (plaid_event["new_holdings"], plaid_event["updated_holdings"]) == (0, 1)
    assert [r.path for r in receiver.received] == ["/plaid", "/snaptrade", "/plaid", "/snaptrade"]


def test_activity_corrections_send_investments_transactions_updates(
    controls: Controls, receiver: Receiver
):
    _both_urls(controls, receiver)
    first, second = controls.list_activities("ibkr-individual")[-2:]
    controls.correct_activity("ibkr-individual", first.id, amount=first.amount + 1)
    controls.remove_activity("ibkr-individual", second.id)
    deliveries = controls.wait_for_webhooks(3)
    assert [
        (d.provider, d.payload().get("webhook_type") or d.payload()["eventType"])
        for d in deliveries
    ] == [
        ("plaid", "INVESTMENTS_TRANSACTIONS"),
        ("snaptrade", "ACCOUNT_TRANSACTIONS_UPDATED"),  # a corrected transaction was found
        ("plaid", "INVESTMENTS_TRANSACTIONS"),  # a removal finds nothing new at SnapTrade
    ]
    corrected, removed = deliveries[0].payload(), deliveries[2].payload()
    for payload in (corrected, removed):
        fits_plaid_model(InvestmentsDefaultUpdateWebhook, payload)
    assert (
        corrected["new_investments_transactions"],
        corrected["cancelled_investments_transactions"],
    ) == (1, 1)
    assert (
        removed["new_investments_transactions"],
        removed["cancelled_investments_transactions"],
    ) == (0, 1)


def test_without_a_url_nothing_is_sent(controls: Controls, receiver: Receiver):
    controls.set_units("ibkr-individual", "AMZN", 1)
    controls.set_cash("merrill-cma", "USD", 5)
    controls.disable_connection(IBKR_AUTH)
    controls.correct_activity(
        "ibkr-individual", controls.list_activities("ibkr-individual")[-1].id, amount=1.0
    )
    assert controls.webhook_deliveries() == []
    # Deliveries go in order: once a webhook sent now has arrived, none was queued before it.
    controls.set_snaptrade_webhook_url(receiver.url())
    controls.fire_snaptrade_webhook("USER_DELETED")
    (only,) = controls.wait_for_webhooks(1)
    assert only.payload()["eventType"] == "USER_DELETED"
    assert len(receiver.received) == 1


# --- deliveries -----------------------------------------------------------------------------


def test_a_webhook_is_sent_after_the_request_that_caused_it_has_been_answered(
    controls: Controls, plaid_sdk: Any, receiver: Receiver
):
    receiver.gate = threading.Event()  # the receiver takes the request but does not answer
    controls.set_plaid_webhook_url(receiver.url(), MERRILL_TOKEN)
    assert fire(plaid_sdk, MERRILL_TOKEN, "LOGIN_REPAIRED").webhook_fired is True
    assert controls.webhook_deliveries() == []  # answered while the delivery is unfinished
    receiver.gate.set()
    (delivery,) = controls.wait_for_webhooks(1)
    assert delivery.status == 200


def test_every_attempt_is_recorded_whatever_the_receiver_does(controls: Controls):
    failing = Receiver(status=500)
    try:
        controls.set_plaid_webhook_url(failing.url(), MERRILL_TOKEN)
        controls.set_plaid_webhook_url(closed_port_url(), IBKR_TOKEN)
        controls.fire_plaid_webhook(MERRILL_TOKEN, "LOGIN_REPAIRED")
        controls.fire_plaid_webhook(IBKR_TOKEN, "LOGIN_REPAIRED")
        answered, refused = controls.wait_for_webhooks(2)
    finally:
        failing.close()
    assert (answered.status, answered.error) == (500, None)
    assert refused.status is None and "Connection" in str(refused.error)
    assert refused.headers["Plaid-Verification"]  # signed all the same
    with pytest.raises(TimeoutError, match="2 of 3"):
        controls.wait_for_webhooks(3, timeout=0.05)


def test_the_webhook_record_survives_clear_and_goes_with_reset_counts(
    controls: Controls, receiver: Receiver
):
    controls.set_snaptrade_webhook_url(receiver.url())
    controls.fire_snaptrade_webhook("USER_DELETED")
    controls.wait_for_webhooks(1)
    controls.clear()
    assert len(controls.webhook_deliveries()) == 1
    controls.reset_counts()
    assert controls.webhook_deliveries() == []
    controls.fire_snaptrade_webhook("USER_DELETED")
    assert len(controls.wait_for_webhooks(1)) == 1  # counted again from 0


# --- delivery faults --------------------------------------------------------------------------


def _plaid_and_snaptrade(controls: Controls, receiver: Receiver) -> None:
    """One Plaid webhook, then one SnapTrade webhook."""
    _both_urls(controls, receiver)
    controls.fire_plaid_webhook(MERRILL_TOKEN, "LOGIN_REPAIRED")
    controls.fire_snaptrade_webhook("USER_DELETED")


def test_late_signs_as_if_sent_ten_minutes_ago(
    controls: Controls, plaid_sdk: Any, receiver: Receiver, clock: StoppedClock
):
    controls.webhook_fault("late", times=2)
    _plaid_and_snaptrade(controls, receiver)
    plaid_sent, snap_sent = controls.wait_for_webhooks(2)
    claims, _ = verify_plaid(plaid_sdk, plaid_sent.headers, plaid_sent.body)
    assert claims["iat"] == int(clock.now) - LATE_SECONDS == int(clock.now) - 600
    assert snap_sent.headers["Signature"] == snaptrade_signature(snap_sent.body)  # still valid
    stamp = datetime.fromisoformat(snap_sent.payload()["eventTimestamp"])
    assert stamp == EMULATOR_NOW - timedelta(minutes=10)
    assert (plaid_sent.faults, snap_sent.faults) == (("late",), ("late",))


def test_duplicate_sends_the_same_delivery_twice(controls: Controls, receiver: Receiver):
    controls.webhook_fault("duplicate", times=2)
    _plaid_and_snaptrade(controls, receiver)
    deliveries = controls.wait_for_webhooks(4)
    plaid_1, plaid_2, snap_1, snap_2 = receiver.received
    assert plaid_1 == plaid_2 and snap_1 == snap_2  # same body, same signature
    assert "plaid-verification" in plaid_1.headers and "signature" in snap_1.headers
    assert json.loads(snap_1.body)["webhookId"] == json.loads(snap_2.body)["webhookId"]
    assert [d.provider for d in deliveries] == ["plaid", "plaid", "snaptrade", "snaptrade"]


def test_reorder_sends_the_next_webhook_after_the_one_that_follows_it(
    controls: Controls, receiver: Receiver
):
    controls.webhook_fault("reorder")
    _plaid_and_snaptrade(controls, receiver)
    controls.fire_snaptrade_webhook("CONNECTION_BROKEN", connection=IBKR_AUTH)
    deliveries = controls.wait_for_webhooks(3)
    assert [d.provider for d in deliveries] == ["snaptrade", "plaid", "snaptrade"]
    assert deliveries[1].faults == ("reorder",)
    assert deliveries[2].payload()["eventType"] == "CONNECTION_BROKEN"  # back in order


def test_clear_sends_a_webhook_held_for_reordering(controls: Controls, receiver: Receiver):
    controls.set_snaptrade_webhook_url(receiver.url())
    controls.webhook_fault("reorder")
    controls.webhook_fault("late", times=5)
    controls.fire_snaptrade_webhook("USER_DELETED")  # held: nothing follows it
    with pytest.raises(TimeoutError):
        controls.wait_for_webhooks(1, timeout=0.05)
    controls.clear()  # drops the faults and lets the held one go
    (held,) = controls.wait_for_webhooks(1)
    assert held.faults == ("late", "reorder")
    controls.fire_snaptrade_webhook("USER_DELETED")
    assert controls.wait_for_webhooks(2)[1].faults == ()


def test_forged_signatures_do_not_verify(controls: Controls, plaid_sdk: Any, receiver: Receiver):
    controls.webhook_fault("forged", times=2)
    _plaid_and_snaptrade(controls, receiver)
    plaid_sent, snap_sent = controls.wait_for_webhooks(2)
    with pytest.raises(jwt.InvalidSignatureError):
        verify_plaid(plaid_sdk, plaid_sent.headers, plaid_sent.body)
    # Signed under the kid the emulator really uses: only the signature is wrong.
    controls.fire_plaid_webhook(MERRILL_TOKEN, "LOGIN_REPAIRED")
    honest = controls.wait_for_webhooks(3)[2]
    _, kid = verify_plaid(plaid_sdk, honest.headers, honest.body)
    assert jwt.get_unverified_header(plaid_sent.headers["Plaid-Verification"])["kid"] == kid
    assert snap_sent.headers["Signature"] != snaptrade_signature(snap_sent.body)


def test_unsigned_sends_no_signature_header(controls: Controls, receiver: Receiver):
    controls.webhook_fault("unsigned", times=2)
    _plaid_and_snaptrade(controls, receiver)
    controls.wait_for_webhooks(2)
    plaid_got, snap_got = receiver.received
    assert "plaid-verification" not in plaid_got.headers
    assert "signature" not in snap_got.headers
    assert json.loads(plaid_got.body)["webhook_code"] == "LOGIN_REPAIRED"


def test_a_fault_can_target_one_provider(controls: Controls, plaid_sdk: Any, receiver: Receiver):
    controls.webhook_fault("forged", provider="snaptrade")
    _plaid_and_snaptrade(controls, receiver)
    plaid_sent, snap_sent = controls.wait_for_webhooks(2)
    verify_plaid(plaid_sdk, plaid_sent.headers, plaid_sent.body)  # untouched
    assert snap_sent.headers["Signature"] != snaptrade_signature(snap_sent.body)
    with pytest.raises(ValueError, match="unknown webhook fault"):
        controls.webhook_fault("slow")
    with pytest.raises(ValueError, match="unknown provider"):
        controls.webhook_fault("late", provider="yodlee")


# --- the HTTP switches ------------------------------------------------------------------------


def test_the_webhook_http_switches(emulator: EmulatorHandle, receiver: Receiver):
    admin = f"{emulator.base_url}/_emulator/webhooks"

    def post(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{admin}/{path}", json=body, timeout=15)

    assert post("snaptrade-url", {"url": receiver.url("/snap")}).json() == {"ok": True}
    assert post(
        "plaid-url", {"url": receiver.url("/plaid"), "access_token": IBKR_TOKEN}
    ).json() == {"items": 1}
    assert post("fault", {"kind": "duplicate", "provider": "plaid"}).status_code == 200
    assert (
        post(
            "plaid/fire", {"access_token": IBKR_TOKEN, "webhook_code": "PENDING_EXPIRATION"}
        ).status_code
        == 200
    )
    fired = post("snaptrade/fire", {"event_type": "CONNECTION_BROKEN", "connection": IBKR_AUTH})
    assert fired.json() == {"queued": 1}
    assert post("wait", {"count": 3, "timeout": 10}).json() == {"deliveries": 3}
    listed = requests.get(f"{admin}/deliveries", params={"provider": "plaid"}, timeout=5).json()
    assert [d["faults"] for d in listed["deliveries"]] == [["duplicate"], ["duplicate"]]
    assert json.loads(listed["deliveries"][0]["body"])["webhook_code"] == "PENDING_EXPIRATION"
    kid = post("plaid-key/rotate", {}).json()["kid"]
    key = plaid_client(emulator).webhook_verification_key_get(
        WebhookVerificationKeyGetRequest(key_id=kid)
    )
    assert key.key.expired_at is None

    assert post("wait", {"count": 9, "timeout": 0.05}).status_code == 408
    assert post("fault", {"kind": "slow"}).status_code == 400
    assert (
        post("plaid/fire", {"access_token": "access-nope", "webhook_code": "ERROR"}).status_code
        == 400
    )
    assert (
        post("plaid-url", {"url": "mailto:someone", "access_token": IBKR_TOKEN}).status_code == 400
    )


def test_the_webhook_switches_are_off_with_the_admin_switches():
    with start_emulator(allow_admin=False) as handle:
        admin = f"{handle.base_url}/_emulator/webhooks"
        assert requests.get(f"{admin}/deliveries", timeout=5).status_code == 403
        url = {"url": "http://127.0.0.1:1/hook"}
        assert requests.post(f"{admin}/snaptrade-url", json=url, timeout=5).status_code == 403
