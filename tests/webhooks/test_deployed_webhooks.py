"""The emulator's real webhook deliveries into the README's deployment: gunicorn with 4
workers (A) and 2 more of the same app (B) on one Postgres database.

A new user links Merrill Lynch through Plaid Hosted Link and connects Charles Schwab
through SnapTrade's portal, over HTTP as a browser would. Then, each from a delivery the
emulator signed as the provider does:

* Hosted Link is finished by ``SESSION_FINISHED`` with no ``/link/token/get`` call;
* one signed holdings update, delivered to A's and B's workers at once, is applied once
  (every other copy answers ``duplicate``), and the next reads, on any worker, fetch that
  Item once and nothing else;
* a broken SnapTrade connection shows as broken with no read of SnapTrade;
* late (stale) and forged deliveries get 401 and change nothing.

Servers are awaited through their output lines, deliveries through the emulator's record
of each attempt, the link's end as its progress page polls for it; each with a deadline,
and no assertion depends on how long anything took.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from bench.load import app_environment
from providers.secret_stores import LocalSecretStore
from sandbox.webhooks.outbox import WebhookDelivery
from tests.browser_fixtures import free_port
from tests.deployed_fixtures import CSRF_FIELD, Gunicorn, flask_command, gunicorn, log_in
from tests.web_fixtures import TEST_PASSWORD

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USER = "webhooks@example.com"  # a new user: nothing linked at either provider yet
A_WORKERS = 4  # the README's deployment
B_WORKERS = 2
HOLDINGS = "plaid /investments/holdings/get"
LINK_GET = "plaid /link/token/get"
COPIES = 16  # of one delivery, half to A's workers and half to B's, all at once
DELIVERY_WAIT = 30.0
# Nothing listens on the discard port: a delivery there is refused, and the emulator keeps
# what it signed (headers and body) without the app ever seeing it.
NOWHERE = "http://127.0.0.1:9/webhooks/plaid"
FAULTY_UNITS = {"late": 90.0, "forged": 80.0}


@dataclass
class Served:
    env: dict[str, str]
    database_url: str
    base_url: str  # A, also PUBLIC_BASE_URL: where providers send webhooks
    a: Gunicorn
    b: Gunicorn

    def plaid_access_token(self, slug: str) -> str:
        """The access token the app stored for its Item at ``slug`` (its own secret file)."""
        store = LocalSecretStore(Path(self.env["INSTANCE_DIR"]) / "secrets.json")
        return store.get(f"plaid/access_token/{USER}/{slug}")


@pytest.fixture
def served(tmp_path: Path, postgres_url: str, emulator: Any) -> Iterator[Served]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = app_environment(postgres_url, tmp_path / "instance", emulator, secrets.token_hex(32))
    env.update(DEFAULT_USER_EMAIL=USER, PUBLIC_BASE_URL=base_url, ALLOW_MIXED_ENVIRONMENTS="false")
    assert "up to date" in flask_command(env, "migrate")
    flask_command({**env, "BROKERAGE_HUB_NEW_PASSWORD": TEST_PASSWORD}, "set-password")
    # SnapTrade sends to the URL set in its dashboard; Plaid to the one a link token names.
    emulator.controls.set_snaptrade_webhook_url(f"{base_url}/webhooks/snaptrade")
    with ExitStack() as stack:
        a = stack.enter_context(gunicorn("A", env, A_WORKERS, tmp_path, port=port))
        b = stack.enter_context(gunicorn("B", env, B_WORKERS, tmp_path))
        yield Served(env, postgres_url, base_url, a, b)


def delivered(
    emulator: Any, since: int, matches: Callable[[WebhookDelivery], bool]
) -> WebhookDelivery:
    """The first delivery attempted after the first ``since`` that ``matches``."""
    count = since + 1
    while True:
        deliveries = emulator.controls.wait_for_webhooks(count, DELIVERY_WAIT)
        found = [d for d in deliveries[since:] if matches(d)]
        if found:
            return found[0]
        count = len(deliveries) + 1


def attempts(emulator: Any) -> int:
    return len(emulator.controls.webhook_deliveries())


def plaid_code(code: str) -> Callable[[WebhookDelivery], bool]:
    return lambda d: d.provider == "plaid" and d.payload().get("webhook_code") == code


def snaptrade_event(event: str) -> Callable[[WebhookDelivery], bool]:
    return lambda d: d.provider == "snaptrade" and d.payload().get("eventType") == event


def csrf_token(person: requests.Session, url: str) -> str:
    token = CSRF_FIELD.search(person.get(url, timeout=30).text)
    assert token is not None
    return token[1]


def follow(person: requests.Session, page: str, action: str, form: dict[str, str]) -> str:
    """POST the form of ``page`` to ``action`` as the page would; where it redirects (303)."""
    answer = person.post(
        action, data={**form, "csrf_token": csrf_token(person, page)}, allow_redirects=False
    )
    assert answer.status_code == 303, answer.text[:300]
    return str(answer.headers["Location"])


def link_href(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}" href="([^"]+)"', page)
    assert found is not None, page[:500]
    return found[1]


def copies_at_once(urls: list[str], delivery: WebhookDelivery) -> list[requests.Response]:
    """The same signed delivery posted to every URL in ``urls`` at the same moment."""
    answers: list[Any] = [None] * len(urls)
    go = threading.Barrier(len(urls), timeout=DELIVERY_WAIT)

    def post(index: int) -> None:
        try:
            go.wait()
            answers[index] = requests.post(
                urls[index], data=delivery.body, headers=delivery.headers, timeout=60
            )
        except BaseException as exc:
            go.abort()
            answers[index] = exc

    threads = [threading.Thread(target=post, args=(i,), daemon=True) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    problems = [a for a in answers if not isinstance(a, requests.Response)]
    assert problems == [], problems[:3]
    return answers


def link_once_finished(person: requests.Session, url: str) -> dict[str, Any]:
    """The link's state once it has finished, polled as the progress page polls (the public
    token is exchanged in the background after the webhook's answer)."""
    deadline = time.monotonic() + DELIVERY_WAIT
    pause = threading.Event()  # never set: a pause between polls, as the page's script makes
    while True:
        job: dict[str, Any] = person.get(url, timeout=30).json()
        if job["finished"] or time.monotonic() > deadline:
            return job
        pause.wait(0.2)


def count_rows(database_url: str, sql: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.timeout(300)
def test_real_deliveries_into_four_workers_on_postgres(served: Served, emulator: Any) -> None:
    base = served.base_url
    with requests.Session() as person:
        assert log_in(person, base, USER, TEST_PASSWORD).status_code == 303

        # Plaid Hosted Link, finished by SESSION_FINISHED: no poll asks Plaid anything.
        job_path = follow(person, f"{base}/plaid/", f"{base}/plaid/link", {})
        job_id = job_path.rsplit("/", 1)[1]
        link_token = link_href(person.get(f"{base}{job_path}").text, "open-plaid-link")
        link_token = link_token.rsplit("/", 1)[1]
        emulator.controls.reset_counts()
        since = attempts(emulator)
        emulator.controls.complete_link(link_token, "merrill-lynch")
        finished = delivered(emulator, since, plaid_code("SESSION_FINISHED"))
        assert finished.status == 200 and finished.url == f"{base}/webhooks/plaid"
        job = link_once_finished(person, f"{base}/api/plaid/link/{job_id}")
        assert job["status"] == "done", job
        assert emulator.controls.calls(LINK_GET) == 0

        # SnapTrade: the portal, and the person's return to us.
        portal_path = follow(
            person, f"{base}/snaptrade/", f"{base}/snaptrade/connect", {"connection_type": "read"}
        )
        flow_id = portal_path.rsplit("/", 1)[1]
        session_id = link_href(person.get(f"{base}{portal_path}").text, "open-snaptrade-portal")
        authorization = emulator.controls.complete_connection(
            session_id.rsplit("/", 1)[1], "charles-schwab"
        )
        back = person.get(f"{base}/snaptrade/connected/{flow_id}", allow_redirects=False)
        assert back.status_code == 303
        person.get(f"{base}/api/positions?format=summary", timeout=60).raise_for_status()

        # One holdings update, signed by the emulator, reaches every worker at once.
        merrill = served.plaid_access_token("merrill-lynch")
        emulator.controls.set_plaid_webhook_url(NOWHERE, merrill)
        since = attempts(emulator)
        emulator.controls.set_units("merrill-cma", "AAPL", 100)
        update = delivered(emulator, since, plaid_code("DEFAULT_UPDATE"))
        assert update.status is None  # refused at NOWHERE: the app has not seen it
        events_before = count_rows(served.database_url, "SELECT count(*) FROM webhook_events")
        targets = [f"{server.url}/webhooks/plaid" for server in (served.a, served.b)]
        answers = copies_at_once([targets[i % 2] for i in range(COPIES)], update)
        assert [a.status_code for a in answers] == [200] * COPIES
        outcomes = sorted(a.json()["status"] for a in answers)
        assert outcomes == ["applied"] + ["duplicate"] * (COPIES - 1), outcomes
        events_after = count_rows(served.database_url, "SELECT count(*) FROM webhook_events")
        assert events_after == events_before + 1

        # The next reads, on A's workers and B's, fetch that Item once and nothing else.
        emulator.controls.reset_counts()
        for server in (served.a, served.b, served.a):
            answer = person.get(f"{server.url}/api/positions?format=full&limit=100", timeout=60)
            assert answer.status_code == 200, (server.name, answer.text[:300])
            aapl = [p["quantity"] for p in answer.json()["positions"] if p["ticker"] == "AAPL"]
            assert aapl == [100], aapl
        assert emulator.controls.calls(HOLDINGS) == 1
        assert emulator.controls.calls() == 1

        # A broken SnapTrade connection shows, with no read of SnapTrade.
        since = attempts(emulator)
        emulator.controls.disable_connection(authorization)
        broken = delivered(emulator, since, snaptrade_event("CONNECTION_BROKEN"))
        assert broken.status == 200
        summary = person.get(f"{base}/api/positions?format=summary", timeout=60).json()
        assert "disabled" in (summary["cache_info"]["snaptrade"]["attention"] or "")
        assert emulator.controls.calls() == 1  # still only the holdings call above

        # Late and forged deliveries: 401, nothing stored, nothing changed.
        emulator.controls.set_plaid_webhook_url(f"{base}/webhooks/plaid", merrill)
        refused_before = count_rows(served.database_url, "SELECT count(*) FROM webhook_events")
        for fault, units in FAULTY_UNITS.items():
            since = attempts(emulator)
            emulator.controls.webhook_fault(fault, provider="plaid")
            emulator.controls.set_units("merrill-cma", "AAPL", units)
            refused = delivered(emulator, since, plaid_code("DEFAULT_UPDATE"))
            assert refused.status == 401, fault
            since = attempts(emulator)
            emulator.controls.webhook_fault(fault, provider="snaptrade")
            # late: the connection is fixed; forged: broken again
            emulator.controls.disable_connection(authorization, fault == "forged")
            event = "CONNECTION_BROKEN" if fault == "forged" else "CONNECTION_FIXED"
            assert delivered(emulator, since, snaptrade_event(event)).status == 401, fault
        assert count_rows(served.database_url, "SELECT count(*) FROM webhook_events") == (
            refused_before
        )
        summary = person.get(f"{base}/api/positions?format=summary", timeout=60).json()
        assert "disabled" in (summary["cache_info"]["snaptrade"]["attention"] or "")


KEY_LOOKUP = "plaid /webhook_verification_key/get"
JUNK = 40  # deliveries under made-up key ids, four times the old per-process budget


def junk_delivery(body_units: int) -> tuple[bytes, dict[str, str]]:
    """A delivery an outsider can make: signed with their own key under a new kid, with
    claims and a body hash that hold, about an Item they made up."""
    import hashlib
    import json
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    body = json.dumps(
        {
            "webhook_type": "HOLDINGS",
            "webhook_code": "DEFAULT_UPDATE",
            "item_id": f"made-up-{uuid.uuid4()}",
            "new_holdings": body_units,
        }
    ).encode()
    claims = {"iat": int(time.time()), "request_body_sha256": hashlib.sha256(body).hexdigest()}
    key = ec.generate_private_key(ec.SECP256R1())
    header = jwt.encode(claims, key, algorithm="ES256", headers={"kid": str(uuid.uuid4())})
    return body, {"Content-Type": "application/json", "Plaid-Verification": header}


@pytest.mark.timeout(300)
def test_a_flood_of_junk_key_ids_cannot_starve_a_genuine_delivery_on_any_worker(
    served: Served, emulator: Any
) -> None:
    base = served.base_url
    ledger_lookups = "SELECT count(*) FROM provider_calls WHERE endpoint LIKE '%verification_key%'"
    with requests.Session() as person:
        assert log_in(person, base, USER, TEST_PASSWORD).status_code == 303
        job_path = follow(person, f"{base}/plaid/", f"{base}/plaid/link", {})
        link_token = link_href(person.get(f"{base}{job_path}").text, "open-plaid-link")
        since = attempts(emulator)
        emulator.controls.complete_link(link_token.rsplit("/", 1)[1], "merrill-lynch")
        assert delivered(emulator, since, plaid_code("SESSION_FINISHED")).status == 200
        job = link_once_finished(person, f"{base}/api/plaid/link/{job_path.rsplit('/', 1)[1]}")
        assert job["status"] == "done", job

        # Plaid rotates its key: the next genuine delivery names a kid no worker has seen.
        emulator.controls.rotate_plaid_webhook_key()
        merrill = served.plaid_access_token("merrill-lynch")
        emulator.controls.set_plaid_webhook_url(NOWHERE, merrill)
        emulator.controls.reset_counts()
        lookups_before = count_rows(served.database_url, ledger_lookups)

        # The flood, spread over A's and B's workers.
        with requests.Session() as outsider:
            for n in range(JUNK):
                body, headers = junk_delivery(n)
                server = served.a if n % 2 else served.b
                answer = outsider.post(
                    f"{server.url}/webhooks/plaid", data=body, headers=headers, timeout=30
                )
                assert answer.status_code == 401, answer.text[:300]
        assert emulator.controls.calls(KEY_LOOKUP) == 0
        assert count_rows(served.database_url, ledger_lookups) == lookups_before

        # The genuine delivery, to a worker of B, then the same to A: applied once.
        since = attempts(emulator)
        emulator.controls.set_units("merrill-cma", "AAPL", 100)
        update = delivered(emulator, since, plaid_code("DEFAULT_UPDATE"))
        first = requests.post(
            f"{served.b.url}/webhooks/plaid", data=update.body, headers=update.headers, timeout=30
        )
        assert first.status_code == 200, first.text[:300]
        assert first.json()["status"] == "applied"
        copy = requests.post(
            f"{served.a.url}/webhooks/plaid", data=update.body, headers=update.headers, timeout=30
        )
        assert copy.status_code == 200 and copy.json()["status"] == "duplicate"
        # Only the genuine key (and Plaid's word on the key it replaced) was looked up,
        # and the ledger holds exactly those lookups.
        genuine_lookups = emulator.controls.calls(KEY_LOOKUP)
        assert 1 <= genuine_lookups <= 2
        assert count_rows(served.database_url, ledger_lookups) == lookups_before + genuine_lookups
