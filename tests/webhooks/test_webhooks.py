"""Provider webhooks into the app: verified as each provider documents, stored once, applied
at once, and used by the cache (one Item or account refreshed alone; webhook-fed data waits
for the next webhook or the safety lifetime). SQLite and Postgres.

Deliveries are signed here exactly as the providers sign them: Plaid with an ES256 key the
receiver fetches by ``kid`` (the test's key stands in for Plaid's key endpoint), SnapTrade
with the HMAC of the consumer key over the compact, sorted JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import func, select

from providers.snaptrade.webhooks import signature_of
from sandbox import data, demo
from services.composition.webhooks import known_plaid_subject
from services.models import WebhookEvent
from services.webhooks.apply import EventEffects
from services.webhooks.plaid_keys import PlaidKeyStore
from services.webhooks.receiver import WebhookReceiver
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import make_app

KID = "test-key-1"
HOLDINGS = "plaid /investments/holdings/get"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
IBKR_ITEM = data.PLAID_ITEM_IDS["interactive-brokers"]
IBKR_TOKEN = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]  # the emulator's call subject
SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
SCHWAB_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]


class PlaidSigner:
    """Signs deliveries as Plaid does: an ES256 JWT over the body's SHA-256."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwk = {**public, "kid": KID, "alg": "ES256", "use": "sig", "expired_at": None}
        self.fetched: list[str] = []

    def key_for(self, kid: str) -> dict[str, Any]:
        self.fetched.append(kid)
        if kid != KID:
            raise LookupError(kid)
        return self.jwk

    def header(self, body: bytes, at: datetime, *, key: Any = None, alg: str = "ES256") -> str:
        claims = {
            "iat": int(at.timestamp()),
            "request_body_sha256": hashlib.sha256(body).hexdigest(),
        }
        signing = key if key is not None else self.key
        return jwt.encode(claims, signing, algorithm=alg, headers={"kid": KID})


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    built.position_views.answer("summary")  # both caches filled; Plaid item ids recorded
    clock.advance(minutes=1)  # news arrives after the data it is news about
    yield built
    built.close()


@pytest.fixture
def signer(hub: Any, clock: FakeClock) -> PlaidSigner:
    """The test's key stands in for Plaid's /webhook_verification_key/get."""
    made = PlaidSigner()
    hub.webhooks = WebhookReceiver(
        hub.engine,
        clock,
        plaid_keys=PlaidKeyStore(
            hub.engine,
            clock,
            fetch=made.key_for,
            knows_subject=known_plaid_subject(hub.connections, lambda token: False),
            sleep=lambda seconds: clock.advance(seconds=seconds),
        ),
        snaptrade_consumer_key=demo.SNAPTRADE_CONSUMER_KEY,
        effects=EventEffects(
            hub.engine, hub.connections, hub.freshness, lambda token, public: None
        ),
    )
    return made


@pytest.fixture
def client(hub: Any, signer: PlaidSigner) -> Any:
    return make_app(hub).test_client()  # not logged in: webhooks need no session


def plaid_body(webhook_type: str, code: str, **fields: Any) -> bytes:
    return json.dumps(
        {"webhook_type": webhook_type, "webhook_code": code, "item_id": IBKR_ITEM, **fields}
    ).encode()


def deliver_plaid(client: Any, signer: PlaidSigner, body: bytes, at: datetime, **kw: Any) -> Any:
    return client.post(
        "/webhooks/plaid",
        data=body,
        headers={"Plaid-Verification": signer.header(body, at, **kw)},
        content_type="application/json",
    )


def snaptrade_payload(event: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "webhookId": hashlib.sha256(f"{event}{at}{fields}".encode()).hexdigest()[:32],
        "clientId": demo.SNAPTRADE_CLIENT_ID,
        "eventTimestamp": at.isoformat().replace("+00:00", "Z"),
        "userId": demo.DEMO_USER_EMAIL,
        "eventType": event,
        **fields,
    }


def deliver_snaptrade(client: Any, payload: dict[str, Any], signature: str | None = None) -> Any:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return client.post(
        "/webhooks/snaptrade",
        data=body,
        headers={"Signature": signature or signature_of(payload, demo.SNAPTRADE_CONSUMER_KEY)},
        content_type="application/json",
    )


def events(hub: Any) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()


# --- Plaid -------------------------------------------------------------------------------------


def test_a_holdings_update_refreshes_that_item_once_and_no_other(
    hub: Any, client: Any, signer: PlaidSigner, emulator: Any, clock: FakeClock
) -> None:
    emulator.controls.reset_counts()
    answer = deliver_plaid(
        client, signer, plaid_body("HOLDINGS", "DEFAULT_UPDATE", new_holdings=1), clock()
    )
    assert answer.status_code == 200 and answer.get_json()["status"] == "applied"
    assert emulator.controls.calls() == 0  # nothing fetched while receiving
    info = hub.position_views.answer("summary")["cache_info"]["plaid"]
    assert emulator.controls.calls_by_subject(HOLDINGS) == {IBKR_TOKEN: 1}
    assert info["due_sources"] == []
    hub.position_views.answer("summary")
    hub.position_views.answer("holdings")
    assert emulator.controls.calls(HOLDINGS) == 1  # once, whatever reads follow


def test_forged_stale_and_tampered_deliveries_get_401_and_change_nothing(
    hub: Any, client: Any, signer: PlaidSigner, emulator: Any, clock: FakeClock
) -> None:
    body = plaid_body("HOLDINGS", "DEFAULT_UPDATE")
    other_key = ec.generate_private_key(ec.SECP256R1())
    hs256 = jwt.encode(
        {"iat": int(clock().timestamp())},
        "a shared secret, long enough for HS256 keys",
        algorithm="HS256",
        headers={"kid": KID},
    )
    refused = [
        deliver_plaid(client, signer, body, clock(), key=other_key),  # forged
        deliver_plaid(client, signer, body, clock() - timedelta(minutes=6)),  # stale
        client.post(  # tampered: the body is not the one signed
            "/webhooks/plaid",
            data=body + b" ",
            headers={"Plaid-Verification": signer.header(body, clock())},
        ),
        client.post("/webhooks/plaid", data=body, headers={"Plaid-Verification": hs256}),
        client.post("/webhooks/plaid", data=body),  # unsigned
    ]
    assert [r.status_code for r in refused] == [401] * 5
    assert all("error" in r.get_json() for r in refused)
    assert events(hub) == 0
    emulator.controls.reset_counts()
    hub.position_views.answer("summary")
    assert emulator.controls.calls() == 0  # nothing became due


def test_a_duplicate_is_processed_once(
    hub: Any, client: Any, signer: PlaidSigner, clock: FakeClock
) -> None:
    body = plaid_body("ITEM", "ERROR", error={"error_code": "ITEM_LOGIN_REQUIRED"})
    first = deliver_plaid(client, signer, body, clock())
    again = deliver_plaid(client, signer, body, clock() + timedelta(seconds=30))
    assert first.get_json()["status"] == "applied"
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert events(hub) == 1
    state = hub.connections.get(hub.user_email, "plaid", "interactive-brokers")
    assert state.status == "login_required"


def test_an_older_connection_event_never_moves_the_state_back(
    hub: Any, client: Any, signer: PlaidSigner, clock: FakeClock
) -> None:
    now = clock()
    repaired = deliver_plaid(client, signer, plaid_body("ITEM", "LOGIN_REPAIRED"), now)
    late = deliver_plaid(
        client,
        signer,
        plaid_body("ITEM", "ERROR", error={"error_code": "ITEM_LOGIN_REQUIRED"}),
        now - timedelta(minutes=2),
    )
    assert repaired.get_json()["status"] == "applied"
    assert late.get_json()["status"] == "older"
    assert hub.connections.get(hub.user_email, "plaid", "interactive-brokers").status == "ok"


def test_an_item_fed_by_webhooks_waits_for_them_or_the_safety_lifetime(
    hub: Any, client: Any, signer: PlaidSigner, emulator: Any, clock: FakeClock
) -> None:
    def acknowledge_every_item() -> None:
        for item in data.PLAID_ITEM_IDS.values():
            body = json.dumps(
                {
                    "webhook_type": "ITEM",
                    "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED",
                    "item_id": item,
                }
            ).encode()
            assert deliver_plaid(client, signer, body, clock()).status_code == 200

    lifetime, safety = hub.settings.provider_cache_hours["plaid"], hub.settings.webhook_safety_hours
    emulator.controls.reset_counts()
    waited = 0
    lifetime_only_refreshes, last_refresh = 0, 0  # what the lifetime rule alone would do
    # A webhook at least every 48 h keeps the Items fed: past the 72 h lifetime, no fetch.
    while waited + 40 < safety:
        acknowledge_every_item()
        clock.advance(hours=40)
        waited += 40
        info = hub.position_views.answer("summary")["cache_info"]["plaid"]
        assert info["fresh_by"] == "webhook" and info["stale"] is False
        if waited - last_refresh >= lifetime:
            lifetime_only_refreshes, last_refresh = lifetime_only_refreshes + 1, waited
    assert waited > lifetime
    assert emulator.controls.calls(HOLDINGS) == 0
    # The cost report counts what the lifetime rule alone would have called.
    avoided = hub.costs.report()["plaid"]["holdings_calls_avoided_last_30_days"]
    assert lifetime_only_refreshes > 0
    assert avoided == lifetime_only_refreshes * len(data.PLAID_ITEM_IDS)
    # Past the safety lifetime, fetched again even though webhooks still arrive.
    acknowledge_every_item()
    clock.advance(hours=safety - waited + 1)
    hub.position_views.answer("summary")
    assert emulator.controls.calls(HOLDINGS) == len(data.PLAID_ITEM_IDS)
    # No webhook for 48 h: back to the ordinary lifetime.
    clock.advance(hours=49)
    assert hub.position_views.answer("summary")["cache_info"]["plaid"]["fresh_by"] == "lifetime"


def test_items_refreshed_alone_keep_their_provider_fresh_past_the_safety_lifetime(
    hub: Any, client: Any, signer: PlaidSigner, emulator: Any, clock: FakeClock
) -> None:
    def holdings_update(item_id: str) -> None:
        body = json.dumps(
            {"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE", "item_id": item_id}
        ).encode()
        assert deliver_plaid(client, signer, body, clock()).get_json()["status"] == "applied"

    safety = hub.settings.webhook_safety_hours
    days = safety // 24 + 1  # past the safety lifetime of the first, whole refresh
    for _ in range(days - 1):
        for item_id in data.PLAID_ITEM_IDS.values():
            holdings_update(item_id)
        hub.position_views.answer("summary")  # each Item refreshed alone
        clock.advance(hours=24)
    refreshed_last = clock() - timedelta(hours=24)
    emulator.controls.reset_counts()
    holdings_update(IBKR_ITEM)
    info = hub.position_views.answer("summary")["cache_info"]["plaid"]
    # Only the Item that changed: every Item was refreshed since the whole refresh.
    assert emulator.controls.calls_by_subject(HOLDINGS) == {IBKR_TOKEN: 1}
    # The answer is as old as its oldest Item.
    assert info["as_of"] == refreshed_last.isoformat()


def test_an_unknown_key_id_is_refused_and_fetched_a_bounded_number_of_times(
    hub: Any, client: Any, signer: PlaidSigner, clock: FakeClock
) -> None:
    body = plaid_body("HOLDINGS", "DEFAULT_UPDATE")
    for n in range(15):
        header = jwt.encode(
            {
                "iat": int(clock().timestamp()),
                "request_body_sha256": hashlib.sha256(body).hexdigest(),
            },
            signer.key,
            algorithm="ES256",
            headers={"kid": f"unknown-{n}"},
        )
        answer = client.post("/webhooks/plaid", data=body, headers={"Plaid-Verification": header})
        assert answer.status_code == 401
    assert len(signer.fetched) <= 10


# --- SnapTrade ---------------------------------------------------------------------------------


def test_a_broken_connection_shows_without_any_read(
    hub: Any, client: Any, emulator: Any, clock: FakeClock
) -> None:
    emulator.controls.reset_counts()
    payload = snaptrade_payload(
        "CONNECTION_BROKEN", clock(), brokerageAuthorizationId=SCHWAB_AUTH, brokerageId="x"
    )
    assert deliver_snaptrade(client, payload).get_json()["status"] == "applied"
    state = hub.connections.get(hub.user_email, "snaptrade", SCHWAB_AUTH)
    assert state.status == "disabled" and state.needs_repair
    info = hub.position_views.answer("summary")["cache_info"]["snaptrade"]
    assert "disabled" in (info["attention"] or "")
    assert emulator.controls.calls() == 0


def test_an_account_holdings_update_refreshes_that_account_alone(
    hub: Any, client: Any, emulator: Any, clock: FakeClock
) -> None:
    emulator.controls.reset_counts()
    payload = snaptrade_payload(
        "ACCOUNT_HOLDINGS_UPDATED",
        clock(),
        accountId=SCHWAB_ACCOUNT,
        details={"positions": True, "balances": True},
    )
    assert deliver_snaptrade(client, payload).get_json()["status"] == "applied"
    hub.position_views.answer("summary")
    assert emulator.controls.calls_by_subject(SNAP_POSITIONS) == {SCHWAB_ACCOUNT: 1}
    assert emulator.controls.calls(HOLDINGS) == 0
    # A copy (the same webhookId) is ignored.
    assert deliver_snaptrade(client, payload).get_json()["status"] == "duplicate"


def test_a_removed_account_leaves_every_view_at_once(
    hub: Any, client: Any, emulator: Any, clock: FakeClock
) -> None:
    def schwab_rows(format_: str) -> int:
        answer = hub.position_views.answer(format_, limit=100)
        return sum(1 for p in answer["positions"] if p["account_id"] == SCHWAB_ACCOUNT)

    assert schwab_rows("full") > 0  # the view is built and kept
    emulator.controls.reset_counts()
    payload = snaptrade_payload("ACCOUNT_REMOVED", clock(), accountId=SCHWAB_ACCOUNT)
    assert deliver_snaptrade(client, payload).get_json()["status"] == "applied"
    assert schwab_rows("full") == 0
    assert emulator.controls.calls() == 0  # served from the cache, without the account


def test_forged_and_stale_snaptrade_deliveries_get_401(
    hub: Any, client: Any, clock: FakeClock
) -> None:
    payload = snaptrade_payload("CONNECTION_DELETED", clock(), brokerageAuthorizationId=SCHWAB_AUTH)
    forged = deliver_snaptrade(client, payload, signature=signature_of(payload, "not-the-key"))
    stale = deliver_snaptrade(
        client,
        snaptrade_payload(
            "CONNECTION_DELETED",
            clock() - timedelta(minutes=6),
            brokerageAuthorizationId=SCHWAB_AUTH,
        ),
    )
    assert forged.status_code == 401 and stale.status_code == 401
    assert events(hub) == 0
    assert hub.connections.get(hub.user_email, "snaptrade", SCHWAB_AUTH).status == "ok"


def test_a_body_over_the_limit_is_refused_before_it_is_read(hub: Any, client: Any) -> None:
    answer = client.post("/webhooks/snaptrade", data=b"x" * (70 * 1024), headers={"Signature": "x"})
    assert answer.status_code == 413
    assert events(hub) == 0


def test_process_webhooks_fetches_what_is_due(
    hub: Any, client: Any, signer: PlaidSigner, emulator: Any, clock: FakeClock
) -> None:
    deliver_plaid(client, signer, plaid_body("HOLDINGS", "DEFAULT_UPDATE"), clock())
    emulator.controls.reset_counts()
    result = make_app(hub).test_cli_runner().invoke(args=["process-webhooks"])
    assert result.exit_code == 0, result.output
    assert emulator.controls.calls_by_subject(HOLDINGS) == {IBKR_TOKEN: 1}
    assert json.loads(result.output)["positions"]["plaid"]["stale"] is False


# --- arbitrary input ---------------------------------------------------------------------------


def test_arbitrary_bodies_and_headers_are_refused_without_a_trace(
    hub: Any, client: Any, signer: PlaidSigner
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    headers = st.one_of(
        st.none(),
        st.text(max_size=300),
        st.just("e30.e30.e30"),
        st.just(jwt.encode({"iat": 1}, signer.key, algorithm="ES256", headers={"kid": KID})),
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        path=st.sampled_from(["/webhooks/plaid", "/webhooks/snaptrade"]),
        body=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)),
        header=headers,
    )
    def check(path: str, body: bytes, header: str | None) -> None:
        name = "Plaid-Verification" if path.endswith("plaid") else "Signature"
        sent = {name: header} if header is not None and header.isprintable() else {}
        answer = client.post(path, data=body, headers=sent)
        assert answer.status_code == 401, answer.get_data(as_text=True)
        assert "Traceback" not in answer.get_data(as_text=True)

    check()
    assert events(hub) == 0


def test_a_snaptrade_delivery_without_webhook_id_resent_with_other_whitespace_is_a_duplicate(
    hub: Any, client: Any, emulator: Any, clock: FakeClock
) -> None:
    payload = snaptrade_payload(
        "CONNECTION_BROKEN", clock(), brokerageAuthorizationId=SCHWAB_AUTH, brokerageId="x"
    )
    del payload["webhookId"]
    signature = signature_of(payload, demo.SNAPTRADE_CONSUMER_KEY)
    first = deliver_snaptrade(client, payload)
    assert first.get_json()["status"] == "applied"
    # The same signed JSON, laid out otherwise: the signature still verifies (it covers the
    # canonical JSON), so it must be known as the same event and change nothing again.
    hub.connections.record(hub.user_email, "snaptrade", SCHWAB_AUTH, status="ok")
    spaced = json.dumps(payload, indent=3, sort_keys=False).encode()
    again = client.post(
        "/webhooks/snaptrade",
        data=spaced,
        headers={"Signature": signature},
        content_type="application/json",
    )
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    assert events(hub) == 1
    assert hub.connections.get(hub.user_email, "snaptrade", SCHWAB_AUTH).status == "ok"
