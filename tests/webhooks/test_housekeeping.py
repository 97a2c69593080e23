"""The scheduler's ``process-webhooks`` also deletes finished and abandoned records: Plaid link
sessions, SnapTrade portal flows, web sessions, login attempts, old webhook events, Plaid key
lookups that found nothing, old call ledger lines and avoided refreshes, even when no
related action (a new link, a login) comes along; fresh ones stay. Every table that grows
with traffic is here."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from services.models import (
    AvoidedRefresh,
    LoginAttempt,
    PlaidLinkSession,
    PlaidWebhookKey,
    ProviderCall,
    SnapTradePortalFlow,
    WebhookEvent,
    WebSession,
)
from services.storage.users import ensure_user, user_id_for
from services.webhooks.log import forget_old_events
from tests.conftest import FakeClock, make_services
from tests.web_fixtures import make_app

TABLES = {
    "plaid_link_sessions": PlaidLinkSession,
    "snaptrade_portal_flows": SnapTradePortalFlow,
    "web_sessions": WebSession,
    "login_attempts": LoginAttempt,
    "webhook_events": WebhookEvent,
    "plaid_webhook_keys": PlaidWebhookKey,
    "provider_calls": ProviderCall,
    "avoided_refreshes": AvoidedRefresh,
}


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Any:
    built = make_services(tmp_path, database_url, emulator, clock)
    yield built
    built.close()


def add_records(hub: Any, tag: str, at: datetime, outcome: str = "applied") -> None:
    """One record of each kind, made at ``at``."""
    ensure_user(hub.engine, hub.user_email, hub.clock)
    user_id = user_id_for(hub.engine, hub.user_email)
    with hub.engine.begin() as conn:
        conn.execute(
            insert(PlaidLinkSession).values(
                job_id=f"job-{tag}",
                user_id=user_id,
                mode="new",
                link_token=f"link-{tag}",
                hosted_link_url="https://hosted.example/link",
                status="done",
                message="",
                poll_seconds=2.0,
                next_poll_at=at,
                expires_at=at + timedelta(hours=4),
                created_at=at,
                updated_at=at,
            )
        )
        conn.execute(
            insert(SnapTradePortalFlow).values(
                flow_id=f"flow-{tag}",
                user_id=user_id,
                connection_type="read",
                portal_url="https://portal.example/",
                connections_before="{}",
                status="open",
                created_at=at,
            )
        )
        conn.execute(
            insert(WebSession).values(
                session_hash=f"hash-{tag}",
                user_id=user_id,
                auth_epoch=0,
                created_at=at,
                last_seen_at=at,
            )
        )
        conn.execute(
            insert(LoginAttempt).values(
                client="10.0.0.9", account=hub.user_email, attempted_at=at, outcome="failed"
            )
        )
        conn.execute(
            insert(WebhookEvent).values(
                provider="snaptrade",
                dedupe_key=f"snaptrade:{tag}",
                kind="ACCOUNT_HOLDINGS_UPDATED",
                family="holdings",
                subject=None,
                sent_at=at,
                received_at=at,
                outcome=outcome,
                payload="{}",
            )
        )
        conn.execute(
            insert(PlaidWebhookKey).values(
                kid=f"kid-{tag}", outcome="failed", looked_up_at=at, failed_lookups=1
            )
        )
        conn.execute(
            insert(ProviderCall).values(
                provider="plaid",
                endpoint="POST /investments/holdings/get",
                subject=f"record-{tag}",
                status="ok",
                duration_ms=1.0,
                called_at=at,
            )
        )
        conn.execute(
            insert(AvoidedRefresh).values(
                user_id=user_id, provider="plaid", after=at, at=at, calls=1
            )
        )


def counts(hub: Any) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {
            name: conn.execute(
                select(func.count())
                .select_from(table)
                # the calls this test recorded, not those the hub itself makes meanwhile
                .where(ProviderCall.subject.like("record-%") if table is ProviderCall else True)
            ).scalar_one()
            for name, table in TABLES.items()
        }


def test_process_webhooks_deletes_old_records_of_every_kind_and_keeps_fresh_ones(
    hub: Any, clock: FakeClock
) -> None:
    add_records(hub, "old", clock() - timedelta(days=100))
    add_records(hub, "fresh", clock() - timedelta(minutes=1))
    assert counts(hub) == dict.fromkeys(TABLES, 2)

    result = make_app(hub).test_cli_runner().invoke(args=["process-webhooks"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cleaned_up"] == dict.fromkeys(TABLES, 1)
    assert counts(hub) == dict.fromkeys(TABLES, 1)
    with hub.engine.connect() as conn:
        assert conn.execute(select(PlaidLinkSession.job_id)).scalar_one() == "job-fresh"
        assert conn.execute(select(WebSession.session_hash)).scalar_one() == "hash-fresh"
        assert conn.execute(select(WebhookEvent.dedupe_key)).scalar_one() == "snaptrade:fresh"


def test_an_old_event_not_applied_yet_is_kept(hub: Any, clock: FakeClock) -> None:
    add_records(hub, "old", clock() - timedelta(days=40), outcome="received")
    with hub.engine.begin() as conn:
        assert forget_old_events(conn, clock()) == 0
    assert counts(hub)["webhook_events"] == 1
