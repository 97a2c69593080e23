"""Every provider call the project makes, under every failure a real provider produces.

For each (provider call, surface that uses it) and each fault, through the emulator's
switches over real HTTP and the real SDKs:

* nothing unhandled reaches the MCP client (a clear ``is_error``, or a stale answer that
  names the error), the browser (no 500: the JSON error shape or a page that says what
  failed) or the CLI (no traceback, exit 0/1);
* the cached position rows, the stored secrets and the recorded orders are unchanged
  (a refused preview may be added to the audit; a placement that got no readable
  answer is recorded as ``unknown``, never ``failed``);
* retries are bounded, counted at the emulator: ``PROVIDER_RETRY_ATTEMPTS`` calls per
  subject for a retryable fault, exactly one otherwise, and one for ``place_order``
  whatever happens; a 429's Retry-After is what the retry waits;
* ITEM_LOGIN_REQUIRED and a disabled connection are recorded on the connection.

The timeout (every attempt slower than ``PROVIDER_TIMEOUT_SECONDS`` = 0.3 s) waits for
real, so it runs on every call but not on every surface: each surface gets it through at
least one of its calls (``TIMEOUT_SURFACES``). "Connection refused" is both the emulator
closing the socket unanswered (``dropped``, every case) and, below the matrix, a closed
port on every surface. Also below: a re-login or a disabled connection stops automatic
calls until it is repaired.

Each case starts from a copy of one migrated SQLite database whose cache was filled
once (the clock is the same fake clock in every case), and its own emulator.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from sqlalchemy import select

from mcp_server import build_server
from sandbox import data, demo
from sandbox.server import start_emulator
from services.models import ActivityRow, PositionRow, ProviderCall, TradeOrder, TradePreview
from tests.conftest import FakeClock, find_secrets, make_services, make_settings
from tests.retry_waits import record_retry_wait
from tests.web_fixtures import make_app, wait_for_link

ATTEMPTS = 3  # PROVIDER_RETRY_ATTEMPTS below, and what conftest's retry_sleeps sets
TIMEOUT_SECONDS = 0.3
LATENCY_SECONDS = 0.4  # longer than the timeout: every attempt times out
RETRY_AFTER_SECONDS = 2
NEW_USER = "new.person@example.com"  # nothing linked: Plaid Link and SnapTrade registration
CSRF = "fault-matrix-csrf-token-0123456789abcdef"
SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
SNAPTRADE_AUTHS = set(data.SNAPTRADE_AUTHORIZATION_IDS.values())
PLAID_ITEMS = set(demo.PLAID_ACCESS_TOKENS)
PROVIDER_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


# --- the faults ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    providers: tuple[str, ...]
    switch: str | None  # the emulator's fault name; None for latency
    retryable: bool
    retry_after: float | None = None

    @property
    def latency(self) -> bool:
        return self.switch is None


FAULTS = [
    Fault("429+Retry-After", ("snaptrade",), "429", True, RETRY_AFTER_SECONDS),
    Fault("429+Retry-After", ("plaid",), "RATE_LIMIT_EXCEEDED", True, RETRY_AFTER_SECONDS),
    Fault("500", ("snaptrade",), "500", True),
    Fault("500", ("plaid",), "INTERNAL_SERVER_ERROR", True),
    Fault("503", ("plaid", "snaptrade"), "503", True),
    Fault("timeout", ("plaid", "snaptrade"), None, True),
    Fault("dropped", ("plaid", "snaptrade"), "drop", True),
    Fault("malformed", ("plaid", "snaptrade"), "malformed", False),
    Fault("missing_field", ("plaid", "snaptrade"), "missing_field", False),
    Fault("nested JSON", ("plaid", "snaptrade"), "nested", False),
    Fault("huge JSON", ("plaid", "snaptrade"), "huge", False),
    Fault("403-1020", ("snaptrade",), "1020", False),
    Fault("402-3003", ("snaptrade",), "3003", False),
    Fault("ITEM_LOGIN_REQUIRED", ("plaid",), "ITEM_LOGIN_REQUIRED", False),
    Fault("INSTITUTION_DOWN", ("plaid",), "INSTITUTION_DOWN", True),
]
# Faults that mean "the person must repair this connection", and the status they record.
REPAIR_STATUS = {"ITEM_LOGIN_REQUIRED": "login_required", "402-3003": "disabled"}


# --- what a case leaves behind ------------------------------------------------------------


@dataclass
class Hub:
    root: Path  # the database and instance folder of this case
    services: Any
    emulator: Any
    clock: FakeClock
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def controls(self) -> Any:
        return self.emulator.controls


@dataclass
class Outcome:
    text: str  # everything the person (or the model) is shown, headers included
    error_shown: bool  # the failure is visible: an error, or a stale answer naming it
    error_message: str | None = None  # the error itself, when the surface reported one


def mcp_call(services: Any, name: str, arguments: dict[str, Any], *, confirm: bool = False):
    import mcp

    async def accept(context: Any, params: Any) -> Any:
        from mcp.types import ElicitResult

        return ElicitResult(action="accept", content={"confirm": True})

    async def run() -> Any:
        options = {"elicitation_callback": accept} if confirm else {}
        async with mcp.Client(build_server(services), **options) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(run)


def mcp_outcome(result: Any, shown: Callable[[dict[str, Any]], bool]) -> Outcome:
    texts = [getattr(item, "text", "") for item in result.content]
    text = "\n".join(texts) + json.dumps(result.structured_content, default=str)
    if result.is_error:
        message = " ".join(texts)
        assert message.strip(), "an MCP error without a message"
        assert "internal error" not in message, message
        return Outcome(text, True, message)
    payload = result.structured_content or json.loads(texts[0])
    payload = payload.get("result", payload)
    return Outcome(text, shown(payload))


def web_client(hub: Hub, **config: Any) -> Any:
    """A logged-in test client (a session started directly: no password hashing)."""
    client = make_app(hub.services, **config).test_client()
    session_id = hub.services.web_auth.sessions.start(hub.services.user_email)
    with client.session_transaction() as session:
        session["sid"] = session_id
        session["csrf_token"] = CSRF
    return client


def response_text(response: Any) -> str:
    return f"{response.status_code}\n{response.headers}\n{response.get_data(as_text=True)}"


def checked_response(response: Any) -> Any:
    assert response.status_code != 500, response_text(response)
    if response.is_json and response.status_code >= 400:
        error = response.get_json()["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str), error
    return response


def follow(client: Any, response: Any) -> Any:
    assert response.status_code in (302, 303), response_text(response)
    return checked_response(client.get(response.headers["Location"]))


def run_cli(hub: Hub, *args: str) -> Any:
    result = make_app(hub.services).test_cli_runner().invoke(args=list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}\n{result.output}"
    )
    assert result.exit_code in (0, 1), result.output
    return result


def positions_show_error(payload: dict[str, Any], provider: str) -> bool:
    refresh = payload.get("refresh")
    if refresh is not None:
        return not refresh["ok"] and bool(refresh["error"])
    info = payload["cache_info"][provider]
    return bool(info["stale"] and info["error"])


# --- the surfaces ---------------------------------------------------------------------------


def expire_caches(hub: Hub) -> None:
    # Past the faulted provider's lifetime; the other one's is 1000 h here (see build_hub).
    hub.clock.advance(hours=73)


def past_the_refresh_cooldown(hub: Hub) -> None:
    # The template's rows were fetched at this very moment: within the cooldown, a refresh
    # answers from them without calling the provider.
    hub.clock.advance(minutes=5)


def preview_first(hub: Hub) -> None:
    answer = hub.services.trading.preview_order(
        SCHWAB_ACCOUNT, "SCHB", "BUY", 2, requested_via="mcp"
    )
    hub.context["preview_id"] = answer["preview_id"]


def preview_and_confirm_first(hub: Hub) -> None:
    # The person has confirmed (on the trades page): only the placement meets the fault.
    preview_first(hub)
    hub.services.trading.confirm(hub.context["preview_id"], via="web")


def place_an_open_sell_first(hub: Hub) -> None:
    # A SELL limit above the market stays open at the brokerage: the next SELL reads it.
    trading = hub.services.trading
    answer = trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "SELL", 1, "Limit", 99.0)
    trading.confirm_and_place(answer["preview_id"], via="web")


def allow_ibkr_trading(hub: Hub) -> None:
    # The demo has IBKR's trading off (1020): turn it on, so only the fault is "attention".
    hub.controls.set_trading_permission(IBKR_AUTH, True)


def mcp_get_positions(hub: Hub, provider: str) -> Outcome:
    result = mcp_call(hub.services, "get_positions", {"format": "summary"})
    return mcp_outcome(result, lambda payload: positions_show_error(payload, provider))


def mcp_get_holdings(hub: Hub, provider: str) -> Outcome:
    result = mcp_call(hub.services, "get_positions", {"format": "holdings", "limit": 5})
    return mcp_outcome(result, lambda payload: positions_show_error(payload, provider))


def mcp_refresh_positions(hub: Hub, provider: str) -> Outcome:
    arguments = {"format": "list", "refresh_provider": provider}
    result = mcp_call(hub.services, "get_positions", arguments)
    return mcp_outcome(result, lambda payload: positions_show_error(payload, provider))


def mcp_check_connections(hub: Hub, provider: str, probe: bool = False) -> Outcome:
    result = mcp_call(hub.services, "check_connections", {"probe_trading": probe})
    return mcp_outcome(result, lambda payload: bool(payload["needs_attention"]))


def mcp_preview_trade(hub: Hub, provider: str) -> Outcome:
    arguments = {"ticker": "SCHB", "quantity": 2, "side": "BUY", "account_id": SCHWAB_ACCOUNT}
    return mcp_outcome(mcp_call(hub.services, "preview_trade", arguments), lambda _: False)


def mcp_preview_sell(hub: Hub, provider: str) -> Outcome:
    arguments = {
        "ticker": "SCHB",
        "quantity": 1,
        "side": "SELL",
        "account_id": SCHWAB_ACCOUNT,
        "order_type": "Limit",
        "limit_price": 60.0,
    }
    return mcp_outcome(mcp_call(hub.services, "preview_trade", arguments), lambda _: False)


def mcp_execute_trade(hub: Hub, provider: str) -> Outcome:
    arguments = {"preview_id": hub.context["preview_id"]}
    result = mcp_call(hub.services, "execute_trade", arguments, confirm=True)
    return mcp_outcome(result, lambda _: False)


def mcp_plan_migration(hub: Hub, provider: str) -> Outcome:
    arguments = {"institution": "interactive-brokers"}
    result = mcp_call(hub.services, "plan_institution_migration", arguments)
    return mcp_outcome(result, lambda payload: not payload["ok"])


def sync_activities_then_expire(hub: Hub) -> None:
    # A stored history first (no fault yet), then past the activity lifetime (24 h here).
    outcome = hub.services.activities.sync_now()
    assert outcome["ok"], outcome
    hub.clock.advance(hours=25)


def activities_show_error(payload: dict[str, Any], provider: str) -> bool:
    info = payload["cache_info"][provider]
    return bool(info["stale"] and info["error"])


def mcp_get_activities(hub: Hub, provider: str) -> Outcome:
    result = mcp_call(hub.services, "get_activities", {"limit": 5})
    return mcp_outcome(result, lambda payload: activities_show_error(payload, provider))


def mcp_get_income(hub: Hub, provider: str) -> Outcome:
    result = mcp_call(hub.services, "get_income", {"period": "last_12_months"})
    return mcp_outcome(result, lambda payload: activities_show_error(payload, provider))


def web_activity_page(hub: Hub, provider: str) -> Outcome:
    response = checked_response(web_client(hub).get("/activity"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    return Outcome(response_text(response), '<span class="warn">· ' in page)


def cli_income(hub: Hub, provider: str) -> Outcome:
    result = run_cli(hub, "income", "--period", "last_12_months")
    if result.exit_code:
        return Outcome(result.output, True, result.stderr)
    return Outcome(result.output, activities_show_error(json.loads(result.stdout), provider))


def signed_plaid_delivery_first(hub: Hub) -> None:
    # The emulator signs a delivery as Plaid would (to a closed port: only its record is
    # kept); the app then needs the signing key, and that call meets the fault. The hub
    # has read its Items once, so it knows the Item the delivery names.
    hub.services.position_views.answer("summary")
    hub.controls.set_plaid_webhook_url("http://127.0.0.1:9/webhooks/plaid")
    hub.controls.fire_plaid_webhook(demo.PLAID_ACCESS_TOKENS["merrill-lynch"], "DEFAULT_UPDATE")
    [delivery] = hub.controls.wait_for_webhooks(1)
    hub.context["delivery"] = delivery
    # The hub receives it as it is sent (the emulator signs with the real time): only then
    # do its claims hold, and only then may the hub ask Plaid for the key.
    hub.clock.now = datetime.fromtimestamp(delivery.event_time, UTC)


def web_plaid_webhook(hub: Hub, provider: str) -> Outcome:
    delivery = hub.context["delivery"]
    response = checked_response(
        web_client(hub).post(
            "/webhooks/plaid",
            data=delivery.body,
            headers={"Plaid-Verification": delivery.headers["Plaid-Verification"]},
        )
    )
    if response.status_code == 401:
        return Outcome(response_text(response), True, response.get_json()["error"]["message"])
    return Outcome(response_text(response), False)


def web_api_positions(hub: Hub, provider: str) -> Outcome:
    response = checked_response(web_client(hub).get("/api/positions?format=summary"))
    if response.status_code >= 400:
        return Outcome(response_text(response), True, response.get_json()["error"]["message"])
    return Outcome(response_text(response), positions_show_error(response.get_json(), provider))


def web_positions_page(hub: Hub, provider: str) -> Outcome:
    response = checked_response(web_client(hub).get("/"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    shown = f'id="provider-{provider}"' in page and "Stale: " in page
    return Outcome(response_text(response), shown)


def web_refresh_button(hub: Hub, provider: str) -> Outcome:
    client = web_client(hub)
    response = checked_response(
        client.post("/positions/refresh", data={"provider": provider, "csrf_token": CSRF})
    )
    page = follow(client, response)
    name = PROVIDER_NAMES[provider]
    return Outcome(
        response_text(response) + response_text(page),
        f"{name} refresh failed:" in page.get_data(as_text=True),
    )


def web_connections_page(hub: Hub, provider: str) -> Outcome:
    response = checked_response(web_client(hub).get("/connections"))
    assert response.status_code == 200
    return Outcome(response_text(response), 'class="warn' in response.get_data(as_text=True))


def web_plaid_link(hub: Hub, provider: str, *, update: bool = False) -> Outcome:
    """Start Plaid Hosted Link (or update mode); finish it at the emulator; read the job."""
    client = web_client(hub, PLAID_LINK_POLL_SECONDS=0.02)
    if update:
        form = {"institution": "merrill-lynch", "csrf_token": CSRF}
        response = checked_response(client.post("/plaid/update", data=form))
    else:
        response = checked_response(client.post("/plaid/link", data={"csrf_token": CSRF}))
    location = response.headers.get("Location", "")
    if not location.startswith("/plaid/link/"):
        page = follow(client, response)
        text = response_text(response) + response_text(page)
        return Outcome(text, "could not be started" in page.get_data(as_text=True))
    job_id = location.rsplit("/", 1)[1]
    status = checked_response(client.get(f"/api/plaid/link/{job_id}")).get_json()
    link_token = urlsplit(status["hosted_link_url"]).path.rsplit("/", 1)[1]
    hub.controls.complete_link(link_token, "merrill-lynch")
    job = wait_for_link(hub.services, job_id, 30)
    assert job.finished, job
    answer = checked_response(client.get(f"/api/plaid/link/{job_id}"))
    page = checked_response(client.get(location))
    status = answer.get_json()
    return Outcome(
        response_text(answer) + response_text(page),
        status["status"] == "failed" or "failed" in status["message"],
        status["message"],
    )


def web_snaptrade_connect(hub: Hub, provider: str) -> Outcome:
    client = web_client(hub)
    form = {"connection_type": "read", "csrf_token": CSRF}
    response = checked_response(client.post("/snaptrade/connect", data=form))
    if response.headers.get("Location", "").startswith("/snaptrade/connect/"):
        return Outcome(response_text(response), False)
    page = follow(client, response)
    return Outcome(
        response_text(response) + response_text(page),
        "could not be opened" in page.get_data(as_text=True),
    )


def cli_positions(hub: Hub, provider: str) -> Outcome:
    result = run_cli(hub, "positions", "--format", "summary")
    if result.exit_code:
        return Outcome(result.output, True, result.stderr)
    return Outcome(result.output, positions_show_error(json.loads(result.stdout), provider))


def cli_health(hub: Hub, provider: str) -> Outcome:
    result = run_cli(hub, "health")
    report = json.loads(result.stdout)
    return Outcome(result.output, bool(report["needs_attention"]) and result.exit_code == 1)


def cli_migrate(hub: Hub, provider: str, *, execute: bool = False) -> Outcome:
    args = ["migrate-institution", "interactive-brokers", "--from", "plaid", "--to", "snaptrade"]
    result = run_cli(hub, *args, *(["--execute"] if execute else []))
    return Outcome(result.output, result.exit_code == 1)


def cli_update_plaid_webhooks(hub: Hub, provider: str) -> Outcome:
    result = run_cli(hub, "update-plaid-webhooks")
    report = json.loads(result.stdout)
    items = report["items"]
    assert {item["institution"] for item in items} == PLAID_ITEMS, items
    errors = [item["error"] for item in items if not item["ok"]]
    # One short line per Item, not a dump of the provider's answer.
    assert all(error and len(error) < 300 and "\n" not in error for error in errors), errors
    shown = result.exit_code == 1 and len(errors) == len(items)
    return Outcome(result.output, shown, " ".join(errors) or None)


@dataclass(frozen=True)
class Surface:
    run: Callable[[Hub, str], Outcome]
    prepare: Callable[[Hub], None] | None = None
    # Writes what it sees into the connection registry (refreshes and health checks do).
    records_state: bool = False
    user: str = demo.DEMO_USER_EMAIL
    env: dict[str, str] = field(default_factory=dict)  # settings this surface needs


SURFACES: dict[str, Surface] = {
    "mcp get_positions": Surface(mcp_get_positions, expire_caches, records_state=True),
    "mcp get_positions refresh": Surface(
        mcp_refresh_positions, past_the_refresh_cooldown, records_state=True
    ),
    "mcp get_positions holdings": Surface(mcp_get_holdings, expire_caches, records_state=True),
    "mcp check_connections": Surface(mcp_check_connections, records_state=True),
    "mcp check_connections probe": Surface(
        lambda hub, provider: mcp_check_connections(hub, provider, probe=True),
        allow_ibkr_trading,
        records_state=True,
    ),
    "mcp preview_trade": Surface(mcp_preview_trade),
    "mcp preview_trade sell": Surface(mcp_preview_sell, place_an_open_sell_first),
    "mcp execute_trade": Surface(mcp_execute_trade, preview_and_confirm_first),
    "mcp plan_institution_migration": Surface(mcp_plan_migration),
    "web GET /api/positions": Surface(web_api_positions, expire_caches, records_state=True),
    "web GET /": Surface(web_positions_page, expire_caches, records_state=True),
    "web POST /positions/refresh": Surface(
        web_refresh_button, past_the_refresh_cooldown, records_state=True
    ),
    "web GET /connections": Surface(web_connections_page, records_state=True),
    "web POST /plaid/link": Surface(web_plaid_link, user=NEW_USER),
    "web POST /plaid/update": Surface(
        lambda hub, provider: web_plaid_link(hub, provider, update=True)
    ),
    "web POST /snaptrade/connect": Surface(web_snaptrade_connect),
    "web POST /snaptrade/connect (new user)": Surface(web_snaptrade_connect, user=NEW_USER),
    "cli positions": Surface(cli_positions, expire_caches, records_state=True),
    "mcp get_activities": Surface(mcp_get_activities, sync_activities_then_expire),
    "mcp get_income": Surface(mcp_get_income, sync_activities_then_expire),
    "web GET /activity": Surface(web_activity_page, sync_activities_then_expire),
    "cli income": Surface(cli_income, sync_activities_then_expire),
    "web POST /webhooks/plaid": Surface(web_plaid_webhook, signed_plaid_delivery_first),
    "cli health": Surface(cli_health, records_state=True),
    "cli update-plaid-webhooks": Surface(
        # A closed port: the emulator's acknowledgement webhook goes nowhere.
        cli_update_plaid_webhooks,
        env={"PUBLIC_BASE_URL": "http://127.0.0.1:9"},
    ),
    "cli migrate-institution": Surface(cli_migrate),
    "cli migrate-institution --execute": Surface(
        lambda hub, provider: cli_migrate(hub, provider, execute=True)
    ),
}


# --- the provider calls, and the surfaces that make them ------------------------------------


@dataclass(frozen=True)
class Call:
    endpoint: str  # the emulator's endpoint key
    surfaces: tuple[str, ...]
    # Connections a repair fault on this call marks (None: the call names no connection).
    marks: frozenset[str] | None = None
    # Surfaces that legitimately succeed when this answer lacks its required field
    # (the field is not one Brokerage Hub reads).
    tolerates_missing_field: tuple[str, ...] = ()

    @property
    def provider(self) -> str:
        return self.endpoint.split(" ", 1)[0]


CALLS = [
    Call(
        "plaid /investments/holdings/get",
        (
            "mcp get_positions",
            "mcp get_positions refresh",
            "mcp get_positions holdings",
            "mcp plan_institution_migration",
            "web GET /api/positions",
            "web GET /",
            "web POST /positions/refresh",
            "cli positions",
            "cli migrate-institution",
        ),
        marks=frozenset(PLAID_ITEMS),
    ),
    Call(
        "plaid /item/get",
        ("mcp check_connections", "web GET /connections", "cli health"),
        marks=frozenset(PLAID_ITEMS),
    ),
    Call("plaid /item/remove", ("cli migrate-institution --execute",)),
    Call("plaid /link/token/create", ("web POST /plaid/link", "web POST /plaid/update")),
    Call("plaid /link/token/get", ("web POST /plaid/link",)),
    Call("plaid /item/public_token/exchange", ("web POST /plaid/link",)),
    Call(
        "snaptrade /accounts",
        (
            "mcp get_positions",
            "mcp get_positions refresh",
            "mcp get_positions holdings",
            "mcp check_connections",
            "mcp preview_trade",
            "mcp execute_trade",
            "mcp plan_institution_migration",
            "web GET /api/positions",
            "web GET /connections",
            "cli positions",
            "cli health",
        ),
    ),
    Call(
        "snaptrade /accounts/{accountId}/balances",
        ("mcp get_positions", "mcp check_connections", "web GET /api/positions", "cli health"),
        marks=frozenset(SNAPTRADE_AUTHS),
    ),
    Call(
        "snaptrade /accounts/{accountId}/positions/all",
        (
            "mcp get_positions",
            "mcp get_positions holdings",
            "mcp preview_trade",
            "mcp execute_trade",
            "mcp plan_institution_migration",
        ),
        marks=frozenset(SNAPTRADE_AUTHS),
    ),
    Call(
        "snaptrade /authorizations/{authorizationId}",
        ("mcp check_connections", "mcp preview_trade", "mcp execute_trade", "cli health"),
        marks=frozenset(SNAPTRADE_AUTHS),
        # Only the type and disabled state are read from the detail, not its id.
        tolerates_missing_field=(
            "mcp check_connections",
            "mcp preview_trade",
            "mcp execute_trade",
            "cli health",
        ),
    ),
    Call(
        "snaptrade /accounts/{accountId}/symbols",
        ("mcp check_connections probe", "mcp preview_trade", "mcp execute_trade"),
        marks=frozenset(SNAPTRADE_AUTHS),
    ),
    # A SELL counts the brokerage's open sell orders against the units held.
    Call("snaptrade /accounts/{accountId}/orders", ("mcp preview_trade sell",)),
    Call("snaptrade /trade/impact", ("mcp preview_trade",)),
    # The order is placed when its answer merely lacks the brokerage order id.
    Call(
        "snaptrade /trade/{tradeId}",
        ("mcp execute_trade",),
        tolerates_missing_field=("mcp execute_trade",),
    ),
    Call("snaptrade /snapTrade/registerUser", ("web POST /snaptrade/connect (new user)",)),
    Call("snaptrade /snapTrade/login", ("web POST /snaptrade/connect",)),
]
ACTIVITY_SURFACES = ("mcp get_activities", "mcp get_income", "web GET /activity", "cli income")
CALLS += [
    Call("plaid /webhook_verification_key/get", ("web POST /webhooks/plaid",)),
    Call("plaid /item/webhook/update", ("cli update-plaid-webhooks",)),
    Call("plaid /investments/transactions/get", ACTIVITY_SURFACES),
    Call("snaptrade /accounts/{accountId}/activities", ACTIVITY_SURFACES),
]
PLACE_ORDER = "snaptrade /trade/{tradeId}"

# Where the timeout runs. Each timeout case waits ATTEMPTS x TIMEOUT_SECONDS for real, and a
# surface renders a ProviderTimeout exactly like the 503 and the dropped connection it gets
# on every call: so every surface gets the timeout through one of its calls, not all.
TIMEOUT_SURFACES = {
    "plaid /investments/holdings/get": (
        "mcp get_positions",
        "web GET /",
        "web POST /positions/refresh",
        "cli migrate-institution",
    ),
    "plaid /item/get": ("web GET /connections", "cli health"),
    "plaid /item/remove": ("cli migrate-institution --execute",),
    "plaid /link/token/create": ("web POST /plaid/update",),
    "plaid /link/token/get": ("web POST /plaid/link",),
    "plaid /item/public_token/exchange": ("web POST /plaid/link",),
    "snaptrade /accounts": ("mcp get_positions refresh", "web GET /api/positions", "cli positions"),
    "snaptrade /accounts/{accountId}/balances": ("mcp check_connections",),
    "snaptrade /accounts/{accountId}/positions/all": (
        "mcp plan_institution_migration",
        "mcp get_positions holdings",
    ),
    "snaptrade /authorizations/{authorizationId}": ("mcp preview_trade",),
    "snaptrade /accounts/{accountId}/symbols": ("mcp check_connections probe",),
    "snaptrade /accounts/{accountId}/orders": ("mcp preview_trade sell",),
    "snaptrade /trade/impact": ("mcp preview_trade",),
    "snaptrade /trade/{tradeId}": ("mcp execute_trade",),
    "snaptrade /snapTrade/registerUser": ("web POST /snaptrade/connect (new user)",),
    "snaptrade /snapTrade/login": ("web POST /snaptrade/connect",),
    "plaid /investments/transactions/get": ("mcp get_activities", "web GET /activity"),
    "plaid /webhook_verification_key/get": ("web POST /webhooks/plaid",),
    "plaid /item/webhook/update": ("cli update-plaid-webhooks",),
    "snaptrade /accounts/{accountId}/activities": ("mcp get_income", "cli income"),
}
assert {s for surfaces in TIMEOUT_SURFACES.values() for s in surfaces} == set(SURFACES)

CASES = [
    pytest.param(call, surface, fault, id=f"{call.endpoint}|{surface}|{fault.name}")
    for call in CALLS
    for surface in call.surfaces
    for fault in FAULTS
    if call.provider in fault.providers
    and (not fault.latency or surface in TIMEOUT_SURFACES[call.endpoint])
]


# --- state that must not change ---------------------------------------------------------


def cache_rows(engine: Any, provider: str) -> list[tuple[Any, ...]]:
    """The provider's cached positions and activities."""
    rows = []
    with engine.connect() as conn:
        for table in (PositionRow.__table__, ActivityRow.__table__):
            query = select(table).where(table.c.provider == provider).order_by(table.c.id)
            rows += [tuple(row) for row in conn.execute(query)]
    return rows


def stored_secrets(store: Any) -> tuple[dict[str, str], list[str]]:
    return {name: store.get(name) for name in store.list_names("")}, store.list_scheduled("")


def audit_rows(engine: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    with engine.connect() as conn:
        previews = conn.execute(select(TradePreview.__table__)).mappings().all()
        orders = conn.execute(select(TradeOrder.__table__)).mappings().all()
    return (
        {row["preview_id"]: dict(row) for row in previews},
        {row["preview_id"]: dict(row) for row in orders},
    )


def connection_states(services: Any, provider: str) -> dict[str, str]:
    return {
        state.external_id: state.status
        for state in services.connections.list(services.user_email, provider)
    }


# --- building a case ------------------------------------------------------------------------

# Each case writes a few dozen small SQLite transactions: on tmpfs they cost no fsync.
FAST_DIR = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh emulator for each case, its state in memory (nothing else shares it)."""
    with start_emulator(port=0) as handle:
        yield handle


@pytest.fixture
def case_dir(tmp_path: Path) -> Iterator[Path]:
    if FAST_DIR is None:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="fault-matrix-", dir=FAST_DIR))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database with the demo cache filled, and its instance folder."""
    root = tmp_path_factory.mktemp("fault-matrix-template")
    with start_emulator(port=0) as emulator:
        built = make_services(root, f"sqlite:///{root / 'hub.db'}", emulator, FakeClock())
        built.positions.get_all_positions()
        built.close()
    return root


def build_hub(
    template: Path,
    tmp_path: Path,
    emulator: Any,
    clock: FakeClock,
    user: str = demo.DEMO_USER_EMAIL,
    **env: str,
) -> Hub:
    root = tmp_path / "hub"
    shutil.copytree(template, root)
    settings = {
        "PROVIDER_RETRY_ATTEMPTS": str(ATTEMPTS),
        "TRADING_ENABLED": "true",
        "DEFAULT_USER_EMAIL": user,
        **env,
    }
    return Hub(root, copied_services(root, emulator, clock, **settings), emulator, clock)


def copied_services(root: Path, emulator: Any, clock: FakeClock, **env: str) -> Any:
    """The service layer on a copy of the template (already migrated: no second engine)."""
    from services.composition import build_services

    settings = make_settings(root, f"sqlite:///{root / 'hub.db'}", **env)
    return build_services(settings, clock=clock, emulator=emulator, sleep=record_retry_wait)


def inject(hub: Hub, endpoint: str, fault: Fault) -> None:
    if fault.latency:
        hub.controls.set_latency(endpoint, LATENCY_SECONDS)
    else:
        assert fault.switch is not None
        hub.controls.fail(endpoint, fault.switch, retry_after=fault.retry_after)


# --- the matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "surface_name", "fault"), CASES)
def test_a_provider_fault_is_reported_changes_nothing_and_is_retried_within_bounds(
    template: Path,
    case_dir: Path,
    emulator: Any,
    clock: FakeClock,
    retry_sleeps: list[float],
    call: Call,
    surface_name: str,
    fault: Fault,
) -> None:
    surface = SURFACES[surface_name]
    provider = call.provider
    other = next(p for p in PROVIDER_NAMES if p != provider)
    # Only the faulted provider's caches expire.
    env = {f"{other.upper()}_CACHE_HOURS": "1000", f"{other.upper()}_ACTIVITY_CACHE_HOURS": "1000"}
    if fault.latency:
        # Only where it is the fault: a short timeout on every case would flake under load.
        env["PROVIDER_TIMEOUT_SECONDS"] = str(TIMEOUT_SECONDS)
    hub = build_hub(template, case_dir, emulator, clock, user=surface.user, **surface.env, **env)
    services = hub.services
    try:
        if surface.prepare is not None:
            surface.prepare(hub)
        rows_before = cache_rows(services.engine, provider)
        secrets_before = stored_secrets(services.secret_store)
        previews_before, orders_before = audit_rows(services.engine)
        hub.controls.reset_counts()
        retry_sleeps.clear()
        inject(hub, call.endpoint, fault)

        outcome = surface.run(hub, provider)
        hub.controls.clear()

        # 1. Reported, never unhandled, never leaking a credential.
        tolerated = fault.switch == "missing_field" and surface_name in (
            call.tolerates_missing_field
        )
        assert "Traceback" not in outcome.text, outcome.text
        assert not find_secrets(outcome.text), "a credential reached the surface"
        if not tolerated:
            assert outcome.error_shown, f"the {fault.name} did not show:\n{outcome.text[:3000]}"
        if outcome.error_message is not None:
            assert PROVIDER_NAMES[provider].lower() in outcome.error_message.lower(), (
                outcome.error_message
            )

        # 2. Bounded retries, counted at the emulator; Retry-After honoured.
        per_subject = hub.controls.calls_by_subject(call.endpoint)
        assert per_subject, f"{surface_name} never called {call.endpoint}"
        expected = ATTEMPTS if fault.retryable and call.endpoint != PLACE_ORDER else 1
        assert all(count == expected for count in per_subject.values()), per_subject
        retries = sum(count - 1 for count in per_subject.values())
        if fault.latency:
            # Under a loaded machine another call may also pass the 0.3 s timeout once.
            assert len(retry_sleeps) >= retries
        else:
            assert len(retry_sleeps) == retries
        if fault.retry_after is not None and expected > 1:
            assert retry_sleeps and set(retry_sleeps) == {fault.retry_after}, retry_sleeps

        # 3. Nothing changed: cached rows, secrets, recorded orders.
        if not tolerated:
            assert cache_rows(services.engine, provider) == rows_before
        assert stored_secrets(services.secret_store) == secrets_before
        previews, orders = audit_rows(services.engine)
        executed = hub.context.get("preview_id")
        for preview_id, row in previews_before.items():
            if preview_id != executed:
                assert previews[preview_id] == row
        new_statuses = {previews[p]["status"] for p in set(previews) - set(previews_before)}
        assert new_statuses <= ({"refused", "previewed"} if tolerated else {"refused"})
        assert {p: o for p, o in orders.items() if p != executed} == orders_before
        if executed is not None:
            order = orders.get(executed)
            if call.endpoint != PLACE_ORDER and tolerated:
                assert order is not None and order["status"] == "placed", order
            elif call.endpoint != PLACE_ORDER:
                assert order is None  # refused before anything was sent to the broker
                assert previews[executed] == previews_before[executed]
            else:
                expected_status = {
                    "missing_field": "placed",  # placed; only the broker's order id is missing
                    "429+Retry-After": "failed",
                    "403-1020": "failed",
                    "402-3003": "failed",
                }.get(fault.name, "unknown")  # sent, no readable answer: never "failed"
                assert order is not None and order["status"] == expected_status, order

        # 4. A repair fault marks the connection.
        if fault.name in REPAIR_STATUS and surface.records_state and call.marks is not None:
            states = connection_states(services, provider)
            marked = {ext for ext, status in states.items() if status == REPAIR_STATUS[fault.name]}
            assert marked == call.marks, states
    finally:
        services.close()


# --- a connection that needs repair is left alone until it is repaired ------------------------

HOLDINGS = "plaid /investments/holdings/get"
SNAP_POSITIONS = "snaptrade /accounts/{accountId}/positions/all"
SNAP_BALANCES = "snaptrade /accounts/{accountId}/balances"
MERRILL_TOKEN = demo.PLAID_ACCESS_TOKENS["merrill-lynch"]
IBKR_TOKEN = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]
IBKR_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]


def positions_rows(services: Any, provider: str, institution: str) -> list[tuple[Any, ...]]:
    return [
        row
        for row in cache_rows(services.engine, provider)
        if institution in row  # the institution column, by value
    ]


def test_an_item_that_needs_a_relogin_is_not_called_automatically_until_it_is_repaired(
    template: Path, case_dir: Path, emulator: Any, clock: FakeClock
) -> None:
    hub = build_hub(template, case_dir, emulator, clock)
    services, controls = hub.services, hub.controls
    try:
        merrill_rows = positions_rows(services, "plaid", "Merrill Lynch")
        controls.fail(HOLDINGS, "ITEM_LOGIN_REQUIRED", subject=MERRILL_TOKEN)

        # The automatic refresh meets the re-login: once, no retry; recorded; rows kept.
        clock.advance(hours=73)
        controls.reset_counts()
        payload = json.loads(run_cli(hub, "positions", "--format", "list").stdout)
        assert controls.calls(HOLDINGS, MERRILL_TOKEN) == 1
        assert controls.calls(HOLDINGS, IBKR_TOKEN) == 1
        state = services.connections.get(services.user_email, "plaid", "merrill-lynch")
        assert state is not None and state.status == "login_required"
        assert "Merrill Lynch: login_required" in payload["cache_info"]["plaid"]["attention"]
        assert positions_rows(services, "plaid", "Merrill Lynch") == merrill_rows

        # Every later automatic refresh (MCP, web, CLI) leaves the Item alone.
        for read in (
            lambda: mcp_call(services, "get_positions", {"format": "summary"}),
            lambda: web_client(hub).get("/api/positions?format=summary"),
            lambda: run_cli(hub, "positions"),
        ):
            clock.advance(hours=73)
            controls.reset_counts()
            read()
            assert controls.calls(HOLDINGS, MERRILL_TOKEN) == 0
            assert controls.calls(HOLDINGS, IBKR_TOKEN) == 1

        # Repaired: the person logs in again through Link and refreshes Plaid explicitly.
        controls.clear()
        controls.reset_counts()
        refreshed = mcp_call(services, "get_positions", {"refresh_provider": "plaid"})
        assert not refreshed.is_error
        assert controls.calls(HOLDINGS, MERRILL_TOKEN) == 1
        state = services.connections.get(services.user_email, "plaid", "merrill-lynch")
        assert state is not None and state.status == "ok"

        # ... and automatic refreshes call it again.
        clock.advance(hours=73)
        controls.reset_counts()
        mcp_call(services, "get_positions", {"format": "list"})
        assert controls.calls(HOLDINGS, MERRILL_TOKEN) == 1
    finally:
        services.close()


def test_a_disabled_connection_is_not_called_automatically_until_it_is_reconnected(
    template: Path, case_dir: Path, emulator: Any, clock: FakeClock
) -> None:
    hub = build_hub(template, case_dir, emulator, clock)
    services, controls = hub.services, hub.controls
    try:
        ibkr_rows = positions_rows(services, "snaptrade", "Interactive Brokers")
        controls.disable_connection(IBKR_AUTH)  # SnapTrade answers 402 code 3003 for it now

        clock.advance(hours=25)
        controls.reset_counts()
        result = mcp_call(services, "get_positions", {"format": "summary"})
        assert not result.is_error
        assert controls.calls(SNAP_POSITIONS, IBKR_ACCOUNT) == 1  # once: 3003 is not retried
        state = services.connections.get(services.user_email, "snaptrade", IBKR_AUTH)
        assert state is not None and state.status == "disabled"
        assert positions_rows(services, "snaptrade", "Interactive Brokers") == ibkr_rows

        for read in (
            lambda: mcp_call(services, "get_positions", {"format": "summary"}),
            lambda: web_client(hub).get("/"),
            lambda: run_cli(hub, "positions"),
        ):
            clock.advance(hours=25)
            controls.reset_counts()
            read()
            assert controls.calls(SNAP_POSITIONS, IBKR_ACCOUNT) == 0
            assert controls.calls(SNAP_BALANCES, IBKR_ACCOUNT) == 0
            assert controls.calls(SNAP_POSITIONS, SCHWAB_ACCOUNT) == 1

        # Reconnected through the portal, then refreshed explicitly: calls resume.
        controls.disable_connection(IBKR_AUTH, disabled=False)
        controls.reset_counts()
        client = web_client(hub)
        client.post("/positions/refresh", data={"provider": "snaptrade", "csrf_token": CSRF})
        assert controls.calls(SNAP_POSITIONS, IBKR_ACCOUNT) == 1
        state = services.connections.get(services.user_email, "snaptrade", IBKR_AUTH)
        assert state is not None and state.status == "ok"
        clock.advance(hours=25)
        controls.reset_counts()
        mcp_call(services, "get_positions", {"format": "list"})
        assert controls.calls(SNAP_POSITIONS, IBKR_ACCOUNT) == 1
    finally:
        services.close()


# --- connection refused: nothing listens on the provider's port ---------------------------------


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def ledger_counts(engine: Any) -> dict[tuple[str, str | None], int]:
    table = ProviderCall.__table__
    counts: dict[tuple[str, str | None], int] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(table.c.endpoint, table.c.subject, table.c.status)):
            assert row.status != "ok", row
            counts[(row.endpoint, row.subject)] = counts.get((row.endpoint, row.subject), 0) + 1
    return counts


REFUSED_SURFACES = [
    ("mcp get_positions", "plaid"),
    ("mcp get_positions", "snaptrade"),
    ("mcp check_connections", "snaptrade"),
    ("mcp preview_trade", "snaptrade"),
    ("mcp execute_trade", "snaptrade"),
    ("mcp plan_institution_migration", "snaptrade"),
    ("web GET /api/positions", "plaid"),
    ("web GET /", "snaptrade"),
    ("web GET /connections", "snaptrade"),
    ("web POST /plaid/link", "plaid"),
    ("web POST /snaptrade/connect", "snaptrade"),
    ("cli positions", "snaptrade"),
    ("cli health", "plaid"),
    ("cli migrate-institution", "snaptrade"),
]


@pytest.mark.parametrize(("surface_name", "provider"), REFUSED_SURFACES)
def test_a_provider_that_refuses_connections_is_reported_and_retried_within_bounds(
    template: Path,
    case_dir: Path,
    emulator: Any,
    clock: FakeClock,
    retry_sleeps: list[float],
    surface_name: str,
    provider: str,
) -> None:
    """Both providers' hosts are a closed port: every request is refused at connect."""
    surface = SURFACES[surface_name]
    hub = build_hub(template, case_dir, emulator, clock, user=surface.user)
    if surface.prepare in (preview_first, preview_and_confirm_first, place_an_open_sell_first):
        surface.prepare(hub)  # while SnapTrade still answers
    hub.services.close()
    dead = closed_port()
    hub.services = copied_services(
        hub.root,
        emulator,
        clock,
        PROVIDER_RETRY_ATTEMPTS=str(ATTEMPTS),
        TRADING_ENABLED="true",
        DEFAULT_USER_EMAIL=surface.user,
        PLAID_BASE_URL=f"{dead}/plaid",
        SNAPTRADE_BASE_URL=f"{dead}/snaptrade",
    )
    services = hub.services
    try:
        if surface.prepare is expire_caches:
            expire_caches(hub)
        rows_before = cache_rows(services.engine, provider)
        secrets_before = stored_secrets(services.secret_store)
        audit_before = audit_rows(services.engine)
        with services.engine.begin() as conn:
            conn.execute(ProviderCall.__table__.delete())
        emulator.controls.reset_counts()
        retry_sleeps.clear()

        outcome = surface.run(hub, provider)

        assert "Traceback" not in outcome.text
        assert not find_secrets(outcome.text)
        assert outcome.error_shown, outcome.text[:3000]
        assert "could not be reached" in outcome.text, outcome.text[:3000]
        assert "in time" not in outcome.text  # refused is not slow
        assert emulator.controls.calls() == 0  # nothing reached a provider
        counts = ledger_counts(services.engine)
        assert counts and set(counts.values()) == {ATTEMPTS}, counts
        assert len(retry_sleeps) == sum(count - 1 for count in counts.values())
        assert cache_rows(services.engine, provider) == rows_before
        assert stored_secrets(services.secret_store) == secrets_before
        previews, orders = audit_rows(services.engine)
        assert orders == audit_before[1]
        assert {p: r for p, r in previews.items() if p in audit_before[0]} == audit_before[0]
        assert all(
            r["status"] == "refused" for p, r in previews.items() if p not in audit_before[0]
        )
    finally:
        services.close()
