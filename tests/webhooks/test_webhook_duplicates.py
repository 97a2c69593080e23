"""A duplicate webhook delivery changes nothing: no freshness mark moves, and the next read
calls no provider. (A duplicate's answer alone says nothing about its effect: a holdings
mark set again right after a refresh costs one provider call per source on the next read.)

Deliveries go through the app's own receiver. Plaid's is signed by the emulator (its key
fetched through the SDK) and replayed byte for byte, as Plaid re-sends one; SnapTrade's is
signed with the consumer key. The app's clock stands at the moment the event was sent, so
the refresh that follows it is within the event's second. SQLite and Postgres.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from providers.snaptrade.webhooks import signature_of
from sandbox import data, demo
from services.models import SourceFreshness
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import make_app

HOLDINGS = "plaid /investments/holdings/get"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
MERRILL_TOKEN = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]


@pytest.fixture
def clock() -> FakeClock:
    """Near the emulator's own clock, which signs Plaid's deliveries."""
    return FakeClock(datetime.now(UTC) - timedelta(minutes=2))


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(tmp_path, database_url, emulator, clock)
    built.position_views.answer("summary")  # both caches filled; Plaid item ids recorded
    yield built
    built.close()


@pytest.fixture
def client(hub: Any) -> Any:
    return make_app(hub).test_client()  # not logged in: webhooks need no session


def marks(hub: Any) -> list[tuple[Any, ...]]:
    """Every source's freshness row as stored: what a webhook's effect changes."""
    with hub.engine.connect() as conn:
        rows = conn.execute(select(SourceFreshness.__table__)).all()
    return sorted(tuple(row) for row in rows)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/plaid"


def signed_plaid_delivery(emulator: Any) -> tuple[bytes, str, datetime]:
    """A HOLDINGS update for the Merrill Item as the emulator signs it: body, header, iat.

    It is sent to a closed port; the test delivers the recorded bytes itself."""
    emulator.controls.set_plaid_webhook_url(closed_port_url())
    emulator.controls.fire_plaid_webhook(MERRILL_TOKEN, "DEFAULT_UPDATE", "HOLDINGS")
    [delivery] = emulator.controls.wait_for_webhooks(1)
    header = delivery.headers["Plaid-Verification"]
    claims = jwt.decode(header, options={"verify_signature": False})
    return delivery.body, header, datetime.fromtimestamp(claims["iat"], UTC)


def deliver_plaid(client: Any, body: bytes, header: str) -> str:
    answer = client.post(
        "/webhooks/plaid",
        data=body,
        headers={"Plaid-Verification": header},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return str(answer.get_json()["status"])


def deliver_snaptrade(client: Any, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    answer = client.post(
        "/webhooks/snaptrade",
        data=body,
        headers={"Signature": signature_of(payload, demo.SNAPTRADE_CONSUMER_KEY)},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return str(answer.get_json()["status"])


def test_a_duplicate_plaid_holdings_update_after_the_refresh_changes_nothing(
    hub: Any, client: Any, emulator: Any, clock: FakeClock
) -> None:
    body, header, sent_at = signed_plaid_delivery(emulator)
    clock.now = sent_at
    assert deliver_plaid(client, body, header) == "applied"
    emulator.controls.reset_counts()
    hub.position_views.answer("summary")
    assert emulator.controls.calls_by_subject(HOLDINGS) == {MERRILL_TOKEN: 1}
    settled = marks(hub)

    assert deliver_plaid(client, body, header) == "duplicate"
    assert marks(hub) == settled
    emulator.controls.reset_counts()
    hub.position_views.answer("summary")
    assert emulator.controls.calls() == 0


def test_a_duplicate_snaptrade_account_holdings_update_after_the_refresh_changes_nothing(
    hub: Any, client: Any, emulator: Any, clock: FakeClock
) -> None:
    clock.advance(minutes=1)  # news arrives after the data it is news about
    payload = {
        "webhookId": hashlib.sha256(f"holdings {clock()}".encode()).hexdigest()[:32],
        "clientId": demo.SNAPTRADE_CLIENT_ID,
        "eventTimestamp": clock().isoformat().replace("+00:00", "Z"),
        "userId": demo.DEMO_USER_EMAIL,
        "eventType": "ACCOUNT_HOLDINGS_UPDATED",
        "accountId": SCHWAB_ACCOUNT,
        "details": {"positions": True, "balances": True},
    }
    assert deliver_snaptrade(client, payload) == "applied"
    emulator.controls.reset_counts()
    hub.position_views.answer("summary")
    assert emulator.controls.calls_by_subject(SNAP_POSITIONS) == {SCHWAB_ACCOUNT: 1}
    settled = marks(hub)

    assert deliver_snaptrade(client, payload) == "duplicate"
    assert marks(hub) == settled
    emulator.controls.reset_counts()
    hub.position_views.answer("summary")
    assert emulator.controls.calls() == 0
