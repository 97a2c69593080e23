"""The emulator's real deliveries into the served app: signed by the emulator as Plaid and
SnapTrade sign (Plaid's key fetched from the emulator's /webhook_verification_key/get
through the SDK), over HTTP, on both databases' code path (SQLite here; Postgres in
test_webhooks.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox import data, demo
from services.models import WebhookEvent
from tests.conftest import make_services, run_now
from tests.web_fixtures import make_app

HOLDINGS = "plaid /investments/holdings/get"
LINK_GET = "plaid /link/token/get"
SCHWAB_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]
MERRILL_TOKEN = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str, emulator: Any) -> Iterator[tuple[str, Any]]:
    """The app on a free port, its background work done in the request (deterministic)."""
    from werkzeug.serving import make_server

    from services.composition import system_clock
    from tests.browser_fixtures import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hub = make_services(
        tmp_path, sqlite_url, emulator, system_clock, background=run_now, PUBLIC_BASE_URL=base
    )
    server = make_server("127.0.0.1", port, make_app(hub, TESTING=False), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="webhook-app", daemon=True)
    thread.start()
    hub.position_views.answer("summary")  # both caches filled; Plaid item ids recorded
    emulator.controls.set_plaid_webhook_url(f"{base}/webhooks/plaid")
    emulator.controls.set_snaptrade_webhook_url(f"{base}/webhooks/snaptrade")
    try:
        yield base, hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        hub.close()


def events(hub: Any) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()


def test_a_change_at_the_broker_refreshes_that_item_alone(
    served: tuple[str, Any], emulator: Any
) -> None:
    _, hub = served
    emulator.controls.set_units("merrill-cma", "AAPL", 100)  # Plaid and nothing else changes
    [delivery] = emulator.controls.wait_for_webhooks(1)
    assert delivery.provider == "plaid" and delivery.status == 200
    emulator.controls.reset_counts()
    answer = hub.position_views.answer("full", limit=100)
    assert emulator.controls.calls_by_subject(HOLDINGS) == {MERRILL_TOKEN: 1}
    aapl = [p for p in answer["positions"] if p["ticker"] == "AAPL"]
    assert [p["quantity"] for p in aapl] == [100]


def test_a_broken_connection_shows_before_any_read(served: tuple[str, Any], emulator: Any) -> None:
    _, hub = served
    emulator.controls.reset_counts()
    emulator.controls.disable_connection(SCHWAB_AUTH)
    [delivery] = emulator.controls.wait_for_webhooks(1)
    assert delivery.payload()["eventType"] == "CONNECTION_BROKEN" and delivery.status == 200
    state = hub.connections.get(hub.user_email, "snaptrade", SCHWAB_AUTH)
    assert state.status == "disabled"
    assert emulator.controls.calls() == 0  # learnt without asking SnapTrade anything


@pytest.mark.parametrize("provider", ["plaid", "snaptrade"])
def test_forged_and_late_deliveries_are_refused(
    served: tuple[str, Any], emulator: Any, provider: str
) -> None:
    _, hub = served
    for fault in ("forged", "late"):
        emulator.controls.webhook_fault(fault, provider=provider)
        if provider == "plaid":
            emulator.controls.fire_plaid_webhook(MERRILL_TOKEN, "DEFAULT_UPDATE", "HOLDINGS")
        else:
            emulator.controls.fire_snaptrade_webhook("CONNECTION_BROKEN", connection=SCHWAB_AUTH)
    deliveries = emulator.controls.wait_for_webhooks(2)
    assert [d.status for d in deliveries] == [401, 401]
    assert events(hub) == 0
    assert hub.connections.get(hub.user_email, "snaptrade", SCHWAB_AUTH).status == "ok"


def test_a_duplicate_delivery_is_processed_once(served: tuple[str, Any], emulator: Any) -> None:
    _, hub = served
    emulator.controls.webhook_fault("duplicate", provider="snaptrade")
    emulator.controls.fire_snaptrade_webhook("CONNECTION_BROKEN", connection=SCHWAB_AUTH)
    deliveries = emulator.controls.wait_for_webhooks(2)
    assert [d.status for d in deliveries] == [200, 200]
    assert events(hub) == 1


def test_hosted_link_finishes_on_session_finished_without_polling(
    served: tuple[str, Any], emulator: Any
) -> None:
    _, hub = served
    hub.plaid_items.remove_institution("interactive-brokers", dry_run=False)
    job = hub.plaid_link.start_plaid_link()
    emulator.controls.reset_counts()
    emulator.controls.complete_link(job.link_token, "interactive-brokers")
    finished = [
        d
        for d in emulator.controls.wait_for_webhooks(1)
        if d.payload().get("webhook_code") == "SESSION_FINISHED"
    ]
    assert finished and finished[0].status == 200
    # Finished already: reading it polls nothing.
    assert hub.plaid_link.plaid_job(job.job_id).finished
    assert emulator.controls.calls(LINK_GET) == 0
