"""Plaid's verification keys, kept in the database: an outsider cannot starve a genuine
delivery, junk costs no key lookups, every worker uses a key any of them fetched, and a
key Plaid says has expired stops verifying. SQLite and Postgres.

Two receivers on one database stand in for two workers (each with its own memory); the
test's signer stands in for Plaid's ``/webhook_verification_key/get``; an attacker signs
with a key of their own under made-up ``kid``s, with claims and body hash that hold.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import func, select

from sandbox import data, demo
from services.composition.webhooks import known_plaid_subject
from services.models import PlaidWebhookKey, ProviderCall
from services.webhooks.apply import EventEffects
from services.webhooks.plaid_keys import LOOKUPS_PER_MINUTE, PlaidKeyStore
from services.webhooks.receiver import WebhookReceiver
from tests.conftest import FakeClock, make_services

IBKR_ITEM = data.PLAID_ITEM_IDS["interactive-brokers"]
KEY_LOOKUP = "plaid /webhook_verification_key/get"


class Plaid:
    """Plaid's signing keys: the current one signs, every one is served by kid."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.expired: dict[str, int] = {}
        self.lookups: list[str] = []
        self.current = self.rotate()

    def rotate(self, at: datetime | None = None) -> str:
        if at is not None and getattr(self, "current", None):
            self.expired[self.current] = int(at.timestamp())
        kid = str(uuid.uuid4())
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        self.current = kid
        return kid

    def key_for(self, kid: str) -> dict[str, Any]:
        self.lookups.append(kid)
        if kid not in self.keys:
            raise LookupError(kid)
        public = ECAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
        return {**public, "kid": kid, "alg": "ES256", "expired_at": self.expired.get(kid)}

    def sign(self, body: bytes, at: datetime) -> str:
        return signed(body, at, self.keys[self.current], self.current)


def signed(body: bytes, at: datetime, key: Any, kid: str) -> str:
    claims = {"iat": int(at.timestamp()), "request_body_sha256": hashlib.sha256(body).hexdigest()}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


def holdings_update(item_id: str = IBKR_ITEM, n: int = 0) -> bytes:
    return json.dumps(
        {
            "webhook_type": "HOLDINGS",
            "webhook_code": "DEFAULT_UPDATE",
            "item_id": item_id,
            "new_holdings": n,
        }
    ).encode()


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    built.position_views.answer("summary")  # Items known: their ids recorded
    clock.advance(minutes=1)
    yield built
    built.close()


def worker(hub: Any, clock: FakeClock, plaid: Plaid) -> WebhookReceiver:
    """One worker's receiver: its own memory, the shared database."""
    keys = PlaidKeyStore(
        hub.engine,
        clock,
        fetch=plaid.key_for,
        knows_subject=known_plaid_subject(hub.connections, lambda token: False),
        sleep=lambda seconds: clock.advance(seconds=seconds),
    )
    effects = EventEffects(hub.engine, hub.connections, hub.freshness, lambda t, p: None)
    return WebhookReceiver(
        hub.engine,
        clock,
        plaid_keys=keys,
        snaptrade_consumer_key=demo.SNAPTRADE_CONSUMER_KEY,
        effects=effects,
    )


def junk(receiver: WebhookReceiver, clock: FakeClock, count: int, item_id: str) -> list[str]:
    """``count`` deliveries signed with the attacker's own key, each under a new kid."""
    attacker = ec.generate_private_key(ec.SECP256R1())
    outcomes = []
    for n in range(count):
        body = holdings_update(item_id, n)
        header = signed(body, clock(), attacker, str(uuid.uuid4()))
        try:
            outcomes.append(receiver.receive_plaid(body, header)["status"])
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def test_a_genuine_delivery_after_a_flood_of_junk_key_ids_is_accepted_on_another_worker(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    first, second = worker(hub, clock, plaid), worker(hub, clock, plaid)

    flood = junk(first, clock, 3 * LOOKUPS_PER_MINUTE, item_id="item-the-attacker-made-up")
    flood += junk(second, clock, 3 * LOOKUPS_PER_MINUTE, item_id="another-made-up-item")

    assert set(flood) == {"WebhookRejected"}
    assert plaid.lookups == []  # junk about nothing this hub knows costs no lookup
    body = holdings_update()
    assert second.receive_plaid(body, plaid.sign(body, clock()))["status"] == "applied"
    assert plaid.lookups == [plaid.current]


def test_a_key_one_worker_fetched_verifies_on_every_other_without_a_lookup(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    first, second = worker(hub, clock, plaid), worker(hub, clock, plaid)
    body = holdings_update(n=1)
    assert first.receive_plaid(body, plaid.sign(body, clock()))["status"] == "applied"

    clock.advance(minutes=2)
    later = holdings_update(n=2)
    assert second.receive_plaid(later, plaid.sign(later, clock()))["status"] == "applied"

    assert plaid.lookups == [plaid.current]


def test_an_unknown_kid_about_a_known_item_is_looked_up_once_per_window_across_workers(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    workers = [worker(hub, clock, plaid) for _ in range(3)]
    attacker = ec.generate_private_key(ec.SECP256R1())
    kid = "a-kid-plaid-never-made"
    for n in range(6):
        body = holdings_update(n=n)
        with pytest.raises(Exception, match="Plaid"):
            workers[n % 3].receive_plaid(body, signed(body, clock(), attacker, kid))

    assert plaid.lookups == [kid]
    assert hub.webhooks.plaid_keys.failed_lookups() == 1


def test_a_failed_key_lookup_is_shown_in_the_cost_report_but_not_charged_to_the_ledger(
    hub: Any, clock: FakeClock, emulator: Any
) -> None:
    emulator.controls.reset_counts()
    attacker = ec.generate_private_key(ec.SECP256R1())
    body = holdings_update()
    with pytest.raises(Exception, match="could not be fetched"):
        hub.webhooks.receive_plaid(body, signed(body, clock(), attacker, "made-up-kid"))

    assert emulator.controls.calls(KEY_LOOKUP) == 1  # the real lookup, through the SDK
    with hub.engine.connect() as conn:
        ledger = conn.execute(
            select(func.count())
            .select_from(ProviderCall)
            .where(ProviderCall.endpoint.like("%webhook_verification_key%"))
        ).scalar_one()
    assert ledger == 0
    plaid = hub.costs.report()["plaid"]
    assert plaid["webhook_key_lookups_failed_last_30_days"] == 1


def test_a_key_plaid_has_expired_stops_verifying_once_rechecked(hub: Any, clock: FakeClock) -> None:
    plaid = Plaid()
    receiver = worker(hub, clock, plaid)
    old_kid = plaid.current
    body = holdings_update(n=1)
    assert receiver.receive_plaid(body, plaid.sign(body, clock()))["status"] == "applied"

    # Plaid rotates: the old key is expired at Plaid, and a delivery under the new kid
    # makes the hub learn that about the key it kept.
    plaid.rotate(clock())
    new_body = holdings_update(n=2)
    assert receiver.receive_plaid(new_body, plaid.sign(new_body, clock()))["status"] == "applied"
    with hub.engine.connect() as conn:
        expired_at = conn.execute(
            select(PlaidWebhookKey.expired_at).where(PlaidWebhookKey.kid == old_kid)
        ).scalar_one()
    assert expired_at is not None

    # A delivery signed with the expired key is refused, with no further lookup.
    lookups = len(plaid.lookups)
    stale = holdings_update(n=3)
    header = signed(stale, clock(), plaid.keys[old_kid], old_kid)
    with pytest.raises(Exception, match="expired"):
        receiver.receive_plaid(stale, header)
    assert len(plaid.lookups) == lookups


def test_a_kept_key_is_rechecked_after_a_day_and_refused_when_plaid_expired_it(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    receiver = worker(hub, clock, plaid)
    kid = plaid.current
    body = holdings_update(n=1)
    assert receiver.receive_plaid(body, plaid.sign(body, clock()))["status"] == "applied"

    plaid.expired[kid] = int(clock().timestamp())  # Plaid expired it; no new key seen yet
    clock.advance(hours=25)
    later = holdings_update(n=2)
    with pytest.raises(Exception, match="expired"):
        receiver.receive_plaid(later, plaid.sign(later, clock()))
    assert plaid.lookups == [kid, kid]


def test_a_forged_body_or_stale_claims_never_cost_a_lookup(hub: Any, clock: FakeClock) -> None:
    plaid = Plaid()
    receiver = worker(hub, clock, plaid)
    attacker = ec.generate_private_key(ec.SECP256R1())
    body = holdings_update()
    stale = signed(body, clock() - timedelta(minutes=10), attacker, "kid-stale")
    other_body = signed(holdings_update(n=9), clock(), attacker, "kid-other-body")
    for header in (stale, other_body):
        with pytest.raises(Exception, match="Plaid webhook"):
            receiver.receive_plaid(body, header)
    assert plaid.lookups == []


def test_housekeeping_forgets_failed_lookups_and_old_ledger_rows(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    receiver = worker(hub, clock, plaid)
    attacker = ec.generate_private_key(ec.SECP256R1())
    body = holdings_update()
    with pytest.raises(Exception, match="could not be fetched"):
        receiver.receive_plaid(body, signed(body, clock(), attacker, "kid-that-fails"))
    hub.ledger.record(
        provider="plaid",
        endpoint="POST /investments/holdings/get",
        subject=None,
        status="ok",
        http_status=200,
        duration_ms=1.0,
    )
    clock.advance(days=100)
    with hub.engine.begin() as conn:
        assert receiver.plaid_keys.forget_old(conn, clock()) == 1
    assert hub.ledger.forget_old() >= 1
    assert hub.ledger.count() == 0


def test_plaid_unreachable_during_a_lookup_lets_the_next_delivery_ask_again(
    hub: Any, clock: FakeClock
) -> None:
    from core.errors import ProviderUnavailable

    plaid = Plaid()
    outage = {"left": 1}
    genuine_fetch = plaid.key_for

    def flaky(kid: str) -> dict[str, Any]:
        if outage["left"]:
            outage["left"] -= 1
            plaid.lookups.append(kid)
            raise ProviderUnavailable("Plaid is unavailable", provider="plaid")
        return genuine_fetch(kid)

    plaid.key_for = flaky  # type: ignore[method-assign]
    receiver = worker(hub, clock, plaid)
    body = holdings_update(n=1)
    with pytest.raises(Exception, match="could not be fetched"):
        receiver.receive_plaid(body, plaid.sign(body, clock()))

    # Plaid delivers again a moment later (well within the window of a failed lookup).
    clock.advance(seconds=20)
    assert receiver.receive_plaid(body, plaid.sign(body, clock()))["status"] == "applied"
    assert plaid.lookups == [plaid.current, plaid.current]
    assert receiver.plaid_keys.failed_lookups() == 0


def test_a_slow_lookup_that_fails_never_undoes_a_key_another_worker_found(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    slow, quick = worker(hub, clock, plaid), worker(hub, clock, plaid)
    body = holdings_update(n=1)

    def slow_then_failing(kid: str) -> dict[str, Any]:
        # While this lookup hangs past its lease, another worker retakes the claim and
        # finds the key; then this one fails.
        clock.advance(seconds=45)
        later = holdings_update(n=2)
        assert quick.receive_plaid(later, plaid.sign(later, clock()))["status"] == "applied"
        raise LookupError(kid)

    slow.plaid_keys._fetch = slow_then_failing  # type: ignore[method-assign]
    with pytest.raises(Exception, match="could not be fetched"):
        slow.receive_plaid(body, plaid.sign(body, clock()))

    latest = holdings_update(n=3)
    assert quick.receive_plaid(latest, plaid.sign(latest, clock()))["status"] == "applied"
    with hub.engine.connect() as conn:
        outcome = conn.execute(
            select(PlaidWebhookKey.outcome).where(PlaidWebhookKey.kid == plaid.current)
        ).scalar_one()
    assert outcome == "found"


def test_unknown_kids_about_a_known_item_cost_at_most_the_minute_budget_of_lookups(
    hub: Any, clock: FakeClock
) -> None:
    plaid = Plaid()
    receiver = worker(hub, clock, plaid)
    attacker = ec.generate_private_key(ec.SECP256R1())
    for n in range(3 * LOOKUPS_PER_MINUTE):
        body = holdings_update(n=n)
        with pytest.raises(Exception, match="Plaid"):
            receiver.receive_plaid(body, signed(body, clock(), attacker, f"kid-{n}"))
    assert len(plaid.lookups) == LOOKUPS_PER_MINUTE

    clock.advance(minutes=2)  # a new minute: a genuine rotation is looked up again
    plaid.rotate(clock())
    body = holdings_update(n=99)
    assert receiver.receive_plaid(body, plaid.sign(body, clock()))["status"] == "applied"
