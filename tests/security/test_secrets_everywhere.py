"""No credential leaves Brokerage Hub: not in a tool result, a page, a JSON answer, a header,
CLI output, an error message, a log line or a database table.

Logs (at DEBUG, through the redacting filter) and the database are checked for every test by
``tests/conftest.py``. Here every MCP tool, every route (with its error answers and the
login page) and every CLI command is run and its output scanned for the known credentials:
Plaid access tokens, the SnapTrade user secret, the Plaid client secret, the SnapTrade
consumer key and the web password. Then errors are provoked whose raw text does carry a
credential (urllib3's message with the request URL and its ``userSecret``; provider error
bodies that echo the access token, the client secret, the user secret and the consumer
key) and the mapped error and every surface that shows it must be clean.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import plaid
import pytest
from plaid.model.item_get_request import ItemGetRequest
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import plaid_loader
import snaptrade_loader
from core.errors import BrokerageHubError
from mcp_server import build_server
from sandbox import data, demo
from tests.conftest import (
    FakeClock,
    find_secrets,
    make_services,
    run_now,
    secrets_in_database,
)
from tests.retry_waits import recording_retry_policy
from tests.web_fixtures import TEST_PASSWORD, csrf_token, log_in, make_app, wait_for_link

SCHWAB_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IBKR_TOKEN = demo.PLAID_ACCESS_TOKENS["interactive-brokers"]


def leaked(text: str, *extra: str) -> list[str]:
    """The known credentials (plus ``extra`` ones, e.g. a demo password) found in ``text``."""
    return find_secrets(text) + [value for value in extra if value and value in text]


def all_text(*parts: Any) -> str:
    return "\n".join(p if isinstance(p, str) else json.dumps(p, default=str) for p in parts)


# --- helpers for the three surfaces -------------------------------------------------------------


def mcp_calls(services: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    import mcp

    async def accept(context: Any, params: Any) -> Any:
        from mcp.types import ElicitResult

        return ElicitResult(action="accept", content={"confirm": True})

    async def run() -> list[Any]:
        async with mcp.Client(build_server(services), elicitation_callback=accept) as client:
            return [await client.call_tool(name, arguments) for name, arguments in calls]

    return anyio.run(run)


def tool_text(result: Any) -> str:
    return all_text(
        *[getattr(item, "text", "") for item in result.content], result.structured_content
    )


def response_text(response: Any) -> str:
    return f"{response.status_code}\n{response.headers}\n{response.get_data(as_text=True)}"


def cli_text(app: Any, *args: str, input: str | None = None) -> str:
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def error_texts(error: BaseException) -> str:
    """Everything an error shows about itself (its cause is not shown: logs redact it)."""
    texts = [str(error), repr(error)]
    if isinstance(error, BrokerageHubError):
        texts += [error.message, json.dumps(error.to_dict())]
    return "\n".join(texts)


@pytest.fixture
def hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(
        tmp_path, sqlite_url, emulator, clock, background=run_now, TRADING_ENABLED="true"
    )
    yield built
    assert secrets_in_database(built.engine) == []
    built.close()


# --- tool results ---------------------------------------------------------------------------------


def test_no_tool_result_carries_a_credential(hub: Any, emulator: Any) -> None:
    preview = hub.trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "BUY", 1, requested_via="mcp")
    emulator.controls.fail("plaid /item/get", "ITEM_LOGIN_REQUIRED")
    calls: list[tuple[str, dict[str, Any]]] = [
        *[("get_positions", {"format": f}) for f in ("full", "summary", "by_account", "list")],
        ("get_positions", {"refresh_provider": "plaid"}),
        ("get_positions", {"refresh_provider": "snaptrade"}),
        ("check_connections", {}),
        ("check_connections", {"probe_trading": True}),
        (
            "preview_trade",
            {"ticker": "SCHB", "quantity": 1, "side": "BUY", "account_id": SCHWAB_ACCOUNT},
        ),
        # the IBKR connection answers 1020: an error result
        (
            "preview_trade",
            {
                "ticker": "SPY",
                "quantity": 1,
                "side": "BUY",
                "account_id": data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"],
                "order_type": "Limit",
                "limit_price": 500,
            },
        ),
        ("execute_trade", {"preview_id": preview["preview_id"]}),
        ("execute_trade", {"preview_id": preview["preview_id"]}),  # the recorded order
        ("execute_trade", {"preview_id": "no-such-preview-id-000"}),
        ("list_trades", {"limit": 200}),
        ("plan_institution_migration", {"institution": "interactive-brokers"}),
        ("plan_institution_migration", {"institution": "merrill-lynch"}),
        ("get_provider_costs", {}),
    ]
    results = mcp_calls(hub, calls)
    assert {name for name, _ in calls} == {
        "get_positions",
        "check_connections",
        "preview_trade",
        "execute_trade",
        "list_trades",
        "plan_institution_migration",
        "get_provider_costs",
    }, "every tool is called"
    assert any(result.is_error for result in results) and not all(r.is_error for r in results)
    for (name, arguments), result in zip(calls, results, strict=True):
        assert not leaked(tool_text(result)), f"{name}({arguments}) returned a credential"


# --- pages, JSON routes and headers ---------------------------------------------------------------


def test_no_page_json_answer_or_header_carries_a_credential(hub: Any, emulator: Any) -> None:
    app = make_app(hub, PLAID_LINK_POLL_SECONDS=0.02)
    client = app.test_client()
    answers: list[tuple[str, Any]] = []
    visited: set[str] = set()

    routes = app.url_map.bind("localhost")

    def keep(label: str, response: Any) -> Any:
        answers.append((label, response))
        with contextlib.suppress(HTTPException):
            visited.add(routes.match(response.request.path, method=response.request.method)[0])
        return response

    # Logged out: the login page, a refused API call, a redirect, the public probe.
    keep("login page", client.get("/login?next=/costs"))
    keep("api without login", client.get("/api/positions"))
    keep("page without login", client.get("/connections"))
    keep("healthz", client.get("/healthz"))
    keep("readyz", client.get("/readyz"))
    keep("static", client.get("/static/style.css"))
    keep(
        "wrong password",
        client.post(
            "/login",
            data={
                "email": hub.user_email,
                "password": TEST_PASSWORD + "x",
                "csrf_token": csrf_token(client),
            },
        ),
    )
    keep(
        "wrong password (API caller)",
        client.post(
            "/login",
            data={"email": hub.user_email, "password": "nope" * 4},
            headers={"Accept": "application/json", "X-CSRF-Token": csrf_token(client)},
        ),
    )
    keep("login", log_in(client, hub))
    token = csrf_token(client)

    # Every page and JSON route, and their error answers.
    for path in ("/", "/connections", "/plaid/", "/snaptrade/", "/trades", "/costs"):
        keep(path, client.get(path))
    for query in ("format=full", "format=summary", "refresh_provider=plaid", "format=table"):
        keep(f"api {query}", client.get(f"/api/positions?{query}"))
    keep(
        "refresh",
        client.post("/positions/refresh", data={"provider": "snaptrade", "csrf_token": token}),
    )
    keep(
        "refresh bad",
        client.post("/positions/refresh", data={"provider": "x", "csrf_token": token}),
    )
    keep("csrf refused", client.post("/positions/refresh", data={"provider": "plaid"}))
    # The trading probe: IBKR answers 1020, so the page shows the support request filled in.
    probed = keep(
        "trading probe", client.post("/connections/probe-trading", data={"csrf_token": token})
    )
    assert f"Client ID: {demo.SNAPTRADE_CLIENT_ID}" in probed.get_data(as_text=True)
    assert 'data-copy-target="support-request-text"' in probed.get_data(as_text=True)
    keep("trading probe csrf refused", client.post("/connections/probe-trading"))
    keep("copy script", client.get("/static/copy_text.js"))
    keep("csrf refused json", client.post("/plaid/link", headers={"Accept": "application/json"}))
    keep("unknown page", client.get("/no/such/page"))

    # Plaid Link (new Item, refused as a duplicate) and update mode, with their job pages.
    started = keep("plaid link", client.post("/plaid/link", data={"csrf_token": token}))
    job_path = started.headers["Location"]
    job_id = job_path.rsplit("/", 1)[1]
    status = keep("link status", client.get(f"/api/plaid/link/{job_id}")).get_json()
    emulator.controls.complete_link(status["hosted_link_url"].rsplit("/", 1)[1], "merrill-lynch")
    wait_for_link(hub, job_id, 15)
    keep("link page", client.get(job_path))
    keep("link status done", client.get(f"/api/plaid/link/{job_id}"))
    keep("link unknown", client.get("/api/plaid/link/unknown-job"))
    keep("link page unknown", client.get("/plaid/link/unknown-job"))
    update = keep(
        "plaid update",
        client.post("/plaid/update", data={"institution": "merrill-lynch", "csrf_token": token}),
    )
    keep("update page", client.get(update.headers["Location"]))
    keep(
        "update unknown",
        client.post("/plaid/update", data={"institution": "nowhere", "csrf_token": token}),
    )

    # The SnapTrade portal: start, the portal page, the return, and unknown flows.
    flow = keep(
        "connect",
        client.post("/snaptrade/connect", data={"connection_type": "trade", "csrf_token": token}),
    )
    flow_id = flow.headers["Location"].rsplit("/", 1)[1]
    keep("portal page", client.get(f"/snaptrade/connect/{flow_id}"))
    keep("portal return", client.get(f"/snaptrade/connected/{flow_id}"))
    keep("portal unknown", client.get("/snaptrade/connect/unknown-flow"))
    keep("return unknown", client.get("/snaptrade/connected/unknown-flow"))
    keep(
        "connect bad",
        client.post("/snaptrade/connect", data={"reconnect": "x", "csrf_token": token}),
    )

    # A trade: its page, confirmed (placed) and shown again; another rejected; unknown ids.
    placed = hub.trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "BUY", 1)["preview_id"]
    keep("trade page", client.get(f"/trades/{placed}"))
    keep("trade confirm", client.post(f"/trades/{placed}/confirm", data={"csrf_token": token}))
    keep("trade placed page", client.get(f"/trades/{placed}"))
    declined = hub.trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "BUY", 1)["preview_id"]
    keep("trade reject", client.post(f"/trades/{declined}/reject", data={"csrf_token": token}))
    keep(
        "trade confirm rejected",
        client.post(f"/trades/{declined}/confirm", data={"csrf_token": token}),
    )
    keep("trade page unknown", client.get("/trades/unknown-preview-id-0123"))
    keep("trade confirm unknown", client.post("/trades/x/confirm", data={"csrf_token": token}))
    keep("trade reject unknown", client.post("/trades/x/reject", data={"csrf_token": token}))
    # Moving IBKR: its page, the checks (run at once here), the plan, the move, the list.
    keep("migration page", client.get("/migrations/interactive-brokers"))
    checked = keep(
        "migration check",
        client.post("/migrations/interactive-brokers/check", data={"csrf_token": token}),
    )
    run_path = checked.headers["Location"]
    keep("migration plan", client.get(run_path))
    keep("migration progress", client.get(f"{run_path}/progress"))
    moved = keep(
        "migration execute",
        client.post(
            f"{run_path}/execute",
            data={"confirm_institution": "Interactive Brokers", "csrf_token": token},
        ),
    )
    keep("migration done", client.get(moved.headers["Location"]))
    keep("migrations", client.get("/migrations"))
    keep("migration unknown run", client.get("/migrations/runs/999999"))
    # The activity history: the page, a filter, a bad date, and a sync.
    keep("activity", client.get("/activity"))
    keep("activity filtered", client.get("/activity?type=dividend&ticker=AAPL"))
    keep("activity bad date", client.get("/activity?start_date=someday"))
    keep("activity sync", client.post("/activity/sync", data={"csrf_token": token}))
    # Webhooks: unsigned deliveries are refused (a signed one is in test_webhooks.py).
    keep("plaid webhook unsigned", client.post("/webhooks/plaid", json={"item_id": "x"}))
    keep("snaptrade webhook unsigned", client.post("/webhooks/snaptrade", json={"userId": "x"}))
    keep("logout", client.post("/logout", data={"csrf_token": token}))

    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert visited == endpoints, f"not visited: {endpoints - visited}"
    assert any(r.status_code >= 400 for _, r in answers), "error answers are checked too"
    for label, response in answers:
        assert not leaked(response_text(response), TEST_PASSWORD), f"{label} carried a credential"


# --- CLI output -----------------------------------------------------------------------------------


def test_no_cli_command_prints_a_credential(hub: Any, emulator: Any) -> None:
    app = make_app(hub)
    preview_id = hub.trading.preview_order(SCHWAB_ACCOUNT, "SCHB", "BUY", 1)["preview_id"]
    runs = [
        ("migrate",),
        ("positions", "--format", "full"),
        ("positions", "--refresh-provider", "snaptrade"),
        ("positions", "--format", "table"),
        ("health", "--probe-trading"),
        ("snaptrade-support-request",),
        ("costs",),
        ("migrate-institution", "interactive-brokers"),
        ("migrate-institution", "interactive-brokers", "--execute"),
        ("migrate-institution", "interactive-brokers", "--execute"),  # already done
        ("migrate-institution", "Nowhere At All"),
        ("demo-login",),  # prints the demo password by design; nothing else secret
        ("clear-login-brake",),
        ("confirm-trade", preview_id),  # refused: its input is not a terminal
        ("reject-trade", preview_id),
        ("reject-trade", preview_id),  # already rejected
        ("refresh-rates",),  # FX_RATES_URL is not set: one line saying so
        ("activities", "--type", "dividend", "--limit", "3"),
        ("activities", "--start", "someday"),
        ("income", "--period", "last_year"),
        ("process-webhooks",),
        ("update-plaid-webhooks",),
    ]
    assert {args[0] for args in runs} | {"set-password"} == set(app.cli.commands)
    for args in runs:
        assert not leaked(cli_text(app, *args)), f"{args} printed a credential"
    output = cli_text(app, "set-password", input=f"{TEST_PASSWORD}\n{TEST_PASSWORD}\n")
    assert "password set" in output
    assert not leaked(output.rsplit("\n", 2)[-2])  # the prompts echo nothing; the result line


def test_the_demo_password_appears_only_where_it_is_printed_on_purpose(
    tmp_path: Path,
    sqlite_url: str,
    emulator: Any,
    clock: FakeClock,
    no_secret_in_logs: list[str],
) -> None:
    """The demo password is made up at random, so the shared list cannot name it: look here."""
    from sqlalchemy import MetaData, select

    hub = make_services(tmp_path, sqlite_url, emulator, clock)
    try:
        app = make_app(hub)
        password = cli_text(app, "demo-login").strip().rsplit(" / ", 1)[1]
        assert password == hub.secret_store.get(f"app/demo_password/{hub.user_email}")
        client = app.test_client()
        wrong = {"email": "someone@else.example", "password": password}
        page = client.post("/login", data={**wrong, "csrf_token": csrf_token(client)})
        assert page.status_code == 401
        assert not leaked(response_text(page), password)
        right = {"email": hub.user_email, "password": password}
        logged_in = client.post("/login", data={**right, "csrf_token": csrf_token(client)})
        assert logged_in.status_code == 303
        for path in ("/", "/connections", "/costs"):
            assert not leaked(response_text(client.get(path)), password)
        assert not leaked(cli_text(app, "costs"), password)
        assert not leaked("\n".join(no_secret_in_logs), password)
        metadata = MetaData()
        metadata.reflect(bind=hub.engine)
        with hub.engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    assert not any(isinstance(v, str) and password in v for v in row), table.name
    finally:
        hub.close()


# --- provoked errors whose raw text carries a credential ------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_urllib3s_message_with_the_user_secret_in_the_url_is_not_passed_on() -> None:
    from snaptrade_client import SnapTrade, SnapTradeAuth

    # The SDK as it comes (urllib3 retries on): its error names the URL, userSecret and all.
    raw_client = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(
            consumer_key=demo.SNAPTRADE_CONSUMER_KEY, client_id=demo.SNAPTRADE_CLIENT_ID
        ),
        host=closed_port_url(),
    )
    raw_client.account_information.api_client.configuration.retries = 0  # type: ignore[assignment]
    with pytest.raises(Exception) as raw:
        raw_client.account_information.list_user_accounts(
            user_id=demo.SNAPTRADE_USER_ID, user_secret=demo.SNAPTRADE_USER_SECRET
        )
    assert demo.SNAPTRADE_USER_SECRET in str(raw.value), "the provocation carries the secret"
    mapped = snaptrade_loader.map_snaptrade_error(raw.value, "GET /accounts")
    assert not leaked(error_texts(mapped))
    assert "could not be reached" in mapped.message

    # And through Brokerage Hub's own client.
    client = snaptrade_loader.make_snaptrade_client(
        closed_port_url(),
        demo.SNAPTRADE_CLIENT_ID,
        demo.SNAPTRADE_CONSUMER_KEY,
        retry_policy=recording_retry_policy(),
    )
    with pytest.raises(BrokerageHubError) as caught:
        snaptrade_loader.fetch_snaptrade_holdings(
            demo.DEMO_USER_EMAIL, client, user_secret=demo.SNAPTRADE_USER_SECRET
        )
    assert not leaked(error_texts(caught.value))


@contextmanager
def echoing_provider(answer: Callable[[Request], tuple[int, dict[str, Any]]]) -> Iterator[str]:
    """A one-off HTTP server whose every answer is ``answer(request)`` (a provider gone wrong)."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        status, body = answer(request)
        return Response(json.dumps(body), status=status, mimetype="application/json")(
            environ, start_response
        )

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def plaid_echo(request: Request) -> tuple[int, dict[str, Any]]:
    """Plaid's error shape, echoing the request's access or public token and the client secret."""
    body = request.get_json(silent=True) or {}
    token = body.get("access_token") or body.get("public_token")
    secret = request.headers.get("PLAID-SECRET")
    return 400, {
        "error_type": "INVALID_INPUT",
        "error_code": "INVALID_FIELD",
        "error_message": f"token {token} is not valid for secret {secret}",
        "display_message": None,
        "request_id": "req-echo",
    }


def snaptrade_echo(request: Request) -> tuple[int, dict[str, Any]]:
    """SnapTrade's error shape, echoing the user secret from the query and the consumer key."""
    user_secret = request.args.get("userSecret")
    return 400, {
        "detail": (
            f"user secret {user_secret} does not match; signed with consumer key "
            f"{demo.SNAPTRADE_CONSUMER_KEY}"
        ),
        "status_code": 400,
        "code": "1083",
    }


def test_provider_errors_that_echo_credentials_are_redacted_on_every_surface(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock
) -> None:
    with echoing_provider(plaid_echo) as plaid_url, echoing_provider(snaptrade_echo) as snap_url:
        # The provocation: the raw errors carry every credential.
        raw_plaid = plaid_loader.make_plaid_client(
            plaid_url,
            demo.PLAID_CLIENT_ID,
            demo.PLAID_SECRET,
            retry_policy=recording_retry_policy(),
        )
        with pytest.raises(plaid.ApiException) as raw:
            raw_plaid.item_get(ItemGetRequest(access_token=IBKR_TOKEN))
        assert IBKR_TOKEN in raw.value.body and demo.PLAID_SECRET in raw.value.body

        hub = make_services(
            tmp_path,
            sqlite_url,
            emulator,
            clock,
            PLAID_BASE_URL=plaid_url,
            SNAPTRADE_BASE_URL=snap_url,
            TRADING_ENABLED="true",
        )
        try:
            # Mapped errors, straight from the adapters.
            for call in (
                lambda: plaid_loader.fetch_plaid_holdings(IBKR_TOKEN, hub.plaid_client()),
                lambda: plaid_loader.get_plaid_item(IBKR_TOKEN, hub.plaid_client()),
                lambda: snaptrade_loader.fetch_snaptrade_holdings(
                    demo.DEMO_USER_EMAIL,
                    hub.snaptrade_client(),
                    user_secret=demo.SNAPTRADE_USER_SECRET,
                ),
            ):
                with pytest.raises(BrokerageHubError) as caught:
                    call()
                assert not leaked(error_texts(caught.value)), caught.value.message

            # Every surface that shows those errors.
            texts: dict[str, str] = {}
            results = mcp_calls(
                hub,
                [
                    ("get_positions", {"format": "summary"}),
                    ("get_positions", {"refresh_provider": "plaid"}),
                    ("get_positions", {"refresh_provider": "snaptrade"}),
                    ("check_connections", {"probe_trading": True}),
                    (
                        "preview_trade",
                        {
                            "ticker": "SCHB",
                            "quantity": 1,
                            "side": "BUY",
                            "account_id": SCHWAB_ACCOUNT,
                        },
                    ),
                    ("plan_institution_migration", {"institution": "interactive-brokers"}),
                ],
            )
            for index, result in enumerate(results):
                texts[f"mcp {index}"] = tool_text(result)
            assert "INVALID_FIELD" in texts["mcp 1"]
            app = make_app(hub)
            client = app.test_client()
            log_in(client, hub)
            for path in (
                "/",
                "/api/positions?format=full",
                "/connections",
                "/plaid/",
                "/snaptrade/",
            ):
                texts[path] = response_text(client.get(path))
            texts["trading probe"] = response_text(
                client.post("/connections/probe-trading", data={"csrf_token": csrf_token(client)})
            )
            texts["connect"] = response_text(
                client.get(
                    client.post(
                        "/snaptrade/connect",
                        data={"connection_type": "read", "csrf_token": csrf_token(client)},
                    ).headers["Location"]
                )
            )
            texts["cli positions"] = cli_text(app, "positions", "--refresh-provider", "plaid")
            texts["cli health"] = cli_text(app, "health")
            texts["cli migrate"] = cli_text(app, "migrate-institution", "interactive-brokers")
            for label, text in texts.items():
                assert not leaked(text), f"{label} carried a credential: {leaked(text)}"
            # The errors did reach the surfaces (redacted), so there was something to check.
            assert re.search(r"INVALID_FIELD|does not match", texts["cli health"])
            assert secrets_in_database(hub.engine) == []
        finally:
            hub.close()


def test_a_credential_handed_straight_to_an_adapter_function_is_redacted_when_echoed() -> None:
    """Secrets that never passed through the secret store are registered where they enter."""
    from snaptrade_broker_adapter import SnapTradeBrokerAdapter

    schwab_account = {"id": SCHWAB_ACCOUNT, "brokerage_authorization": None}
    with echoing_provider(plaid_echo) as plaid_url, echoing_provider(snaptrade_echo) as snap_url:
        plaid_client = plaid_loader.make_plaid_client(
            plaid_url,
            demo.PLAID_CLIENT_ID,
            demo.PLAID_SECRET,
            retry_policy=recording_retry_policy(),
        )
        snap_client = snaptrade_loader.make_snaptrade_client(
            snap_url,
            demo.SNAPTRADE_CLIENT_ID,
            demo.SNAPTRADE_CONSUMER_KEY,
            retry_policy=recording_retry_policy(),
        )
        plaid_calls: dict[str, Callable[[str], Any]] = {
            "fetch_plaid_holdings": lambda t: plaid_loader.fetch_plaid_holdings(t, plaid_client),
            "load_plaid_positions": lambda t: plaid_loader.load_plaid_positions(
                t, plaid_client, user_email=demo.DEMO_USER_EMAIL, institution_slug="ibkr"
            ),
            "get_plaid_item": lambda t: plaid_loader.get_plaid_item(t, plaid_client),
            "create_link_token": lambda t: plaid_loader.create_link_token(
                plaid_client, demo.DEMO_USER_EMAIL, access_token=t
            ),
            "exchange_public_token": lambda t: plaid_loader.exchange_public_token(t, plaid_client),
            "remove_plaid_connection": lambda t: plaid_loader.remove_plaid_connection(
                t, plaid_client
            ),
        }
        snaptrade_calls: dict[str, Callable[[str], Any]] = {
            "login_snaptrade_user": lambda s: snaptrade_loader.login_snaptrade_user(
                snap_client, demo.DEMO_USER_EMAIL, s
            ),
            "list_snaptrade_connections": lambda s: snaptrade_loader.list_snaptrade_connections(
                demo.DEMO_USER_EMAIL, snap_client, user_secret=s
            ),
            "fetch_snaptrade_account": lambda s: snaptrade_loader.fetch_snaptrade_account(
                snap_client, demo.DEMO_USER_EMAIL, s, schwab_account
            ),
            "fetch_snaptrade_holdings": lambda s: snaptrade_loader.fetch_snaptrade_holdings(
                demo.DEMO_USER_EMAIL, snap_client, user_secret=s
            ),
            "load_snaptrade_positions": lambda s: snaptrade_loader.load_snaptrade_positions(
                demo.DEMO_USER_EMAIL, snap_client, user_secret=s
            ),
            "check_snaptrade_connection_health": lambda s: (
                snaptrade_loader.check_snaptrade_connection_health(
                    demo.DEMO_USER_EMAIL, snap_client, user_secret=s
                )
            ),
            "SnapTradeBrokerAdapter.list_accounts": lambda s: SnapTradeBrokerAdapter(
                snap_client, demo.DEMO_USER_EMAIL, s
            ).list_accounts(),
        }
        for name, call in {**plaid_calls, **snaptrade_calls}.items():
            # A value nothing else has seen, in no shape a pattern knows: only the function's
            # own registration can mask it.
            fresh = secrets.token_hex(16)
            with pytest.raises(BrokerageHubError) as caught:
                call(fresh)
            text = error_texts(caught.value)
            assert "INVALID_FIELD" in text or "does not match" in text, (name, text)
            assert fresh not in text, f"{name} showed the credential it was given"
