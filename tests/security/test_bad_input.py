"""Arbitrary input on every MCP tool and every web route: a clear refusal, never a crash.

Property-based (hypothesis): every tool gets arbitrary JSON for each argument (unicode and
huge strings, huge, negative and non-finite numbers, null, lists, objects), arguments left
out and unknown ones added, mixed with plausible values so the checks behind the first one
are reached too. Every route gets arbitrary path segments, query parameters and bodies
(form, JSON, bytes), logged in with a valid CSRF token, logged in without one, and logged
out.

* MCP: a tool answers, or ``is_error`` with a message; never "internal error", never a
  traceback.
* Web: never a 500, never a traceback; a 4xx to an API caller (``/api/...`` or
  ``Accept: application/json``) is always ``{"error": {"type": ..., "message": ...}}``.
* No call that could change anything reaches a provider (Plaid ``/item/remove``,
  SnapTrade ``/trade/impact``, ``/trade/{tradeId}``, ``/snapTrade/registerUser``).

The service layer and the client are built once per test function and reused by its
examples, so state accumulates across examples as it would in a running server.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_server import build_server
from sandbox import data
from tests.conftest import FakeClock, find_secrets, make_services, run_now
from tests.web_fixtures import make_app

CHANGING_ENDPOINTS = (
    "plaid /item/remove",
    "snaptrade /trade/impact",
    "snaptrade /trade/{tradeId}",
    "snaptrade /snapTrade/registerUser",
)
# Schwab's connection may trade: a plausible preview there would reach the order impact.
# IBKR's answers 1020 at the symbol search, before the impact: its checks are reached.
TRADABLE_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
REFUSING_ACCOUNT = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]
CSRF = "bad-input-csrf-token-0123456789abcdefghij"

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- arbitrary JSON ---------------------------------------------------------------------------

HUGE_STRINGS = st.sampled_from(
    [
        "A" * 100_000,
        "é" * 30_000,
        "\U0001f4b8" * 20_000,
        "\x00" * 1_000,
        "interactive-brokers" * 1_000,
        "1" * 400,
    ]
)
STRINGS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    HUGE_STRINGS,
    st.sampled_from(["", " ", "\x00", "null", "NaN", "-1", "1e309", "../../etc", "<script>"]),
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, -1, 1e-300, 1e308, 2**63, -(2**63) - 1, float("nan"), float("inf")]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=8,
)


def arguments(plausible: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Each known argument left out, plausible or arbitrary; sometimes unknown ones added."""
    known = st.fixed_dictionaries(
        {}, optional={name: st.one_of(values, JSON_VALUES) for name, values in plausible.items()}
    )
    extra = st.dictionaries(st.text(min_size=1, max_size=12), JSON_VALUES, max_size=2)
    return st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]})


def not_tradable(value: Any) -> bool:
    return not (isinstance(value, str) and value.strip().lower() == TRADABLE_ACCOUNT)


DATES = st.one_of(
    st.none(),
    st.dates().map(str),
    st.sampled_from(["2026-02-30", "yesterday", "2026-1-5", "0001-01-01", "9999-12-31"]),
    st.text(max_size=20),
)
ACCOUNT_IDS = [
    data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"],
    data.PLAID_ACCOUNT_IDS["merrill-cma"],
]
PRICES = st.one_of(st.floats(min_value=-1e6, max_value=1e12), st.sampled_from([0.01, 1, 50, 1e9]))
TOOL_ARGUMENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "get_positions": arguments(
        {
            "format": st.sampled_from(
                ["full", "summary", "by_account", "list", "holdings", "table", "FULL", "Holdings"]
            ),
            "refresh_provider": st.sampled_from(["plaid", "snaptrade", None, "robinhood", ""]),
            "limit": st.one_of(st.none(), st.integers(-(10**20), 10**20)),
            "cursor": st.one_of(
                st.none(), st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_-]{8,80}")
            ),
        }
    ),
    "check_connections": arguments({"probe_trading": st.booleans()}),
    "preview_trade": arguments(
        {
            "ticker": st.sampled_from(["AAPL", "SCHB", "BRK.B", "ZZZZ", "aapl", " SPY "]),
            "quantity": st.one_of(PRICES, st.integers(-5, 10**6)),
            "side": st.sampled_from(["BUY", "SELL", "buy", "HOLD", ""]),
            "account_id": st.one_of(
                st.uuids().map(str), st.sampled_from([REFUSING_ACCOUNT, "acct-1", "1"])
            ),
            "order_type": st.sampled_from(["Market", "Limit", "limit", "Stop", "StopLimit"]),
            "limit_price": st.one_of(st.none(), PRICES),
        }
    ).filter(lambda args: not_tradable(args.get("account_id"))),
    "execute_trade": arguments(
        {"preview_id": st.one_of(st.text(max_size=70), st.from_regex(r"[A-Za-z0-9_-]{16,64}"))}
    ),
    "list_trades": arguments({"limit": st.integers(-(10**20), 10**20)}),
    "plan_institution_migration": arguments(
        {
            "institution": st.sampled_from(
                ["interactive-brokers", "merrill-lynch", "charles-schwab", "Interactive Brokers"]
            )
        }
    ),
    "get_provider_costs": arguments({}),
    "get_activities": arguments(
        {
            "start_date": DATES,
            "end_date": DATES,
            "type": st.sampled_from(["dividend", "fee,buy", "DIVIDEND", "dividends", "", ","]),
            "account_id": st.one_of(st.text(max_size=120), st.sampled_from(ACCOUNT_IDS)),
            "ticker": st.one_of(st.text(max_size=30), st.sampled_from(["AAPL", "brk.b", "A B"])),
            "limit": st.one_of(st.none(), st.integers(-(10**20), 10**20)),
            "cursor": st.one_of(st.none(), st.text(max_size=300)),
        }
    ),
    "get_income": arguments(
        {
            "period": st.sampled_from(
                ["last_year", "ytd", "this_quarter", "quarterly", "", "LAST_YEAR", "custom"]
            ),
            "start_date": DATES,
            "end_date": DATES,
        }
    ),
}


# Inputs that once broke a tool: checked on every run, before the random ones.
TOOL_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    # Postgres refuses NUL characters and values longer than the column (100).
    "plan_institution_migration": [{"institution": "a\x00b"}, {"institution": "x" * 300}],
    "get_activities": [{"account_id": "\x00"}, {"ticker": "A\x00"}, {"type": "fee\x00"}],
}

# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, database_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    """The service layer with trading enabled, so execute_trade's own checks are reached."""
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


@contextmanager
def mcp_session(services: Any) -> Iterator[Callable[[str, dict[str, Any]], Any]]:
    """One in-memory MCP session for all of a test's examples (a blocking portal drives it)."""
    import mcp
    from anyio.from_thread import start_blocking_portal

    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(mcp.Client(build_server(services))) as client,
    ):
        yield lambda name, args: portal.call(client.call_tool, name, args)


def assert_nothing_changed_at_a_provider(emulator: Any) -> None:
    for endpoint in CHANGING_ENDPOINTS:
        assert emulator.controls.calls(endpoint) == 0, endpoint


# --- MCP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", sorted(TOOL_ARGUMENTS))
def test_every_tool_answers_arbitrary_arguments_with_a_result_or_a_clear_error(
    hub: Any, emulator: Any, tool: str
) -> None:
    with mcp_session(hub) as call:

        def check_one(args: dict[str, Any]) -> None:
            result = call(tool, args)
            texts = " ".join(getattr(item, "text", "") for item in result.content)
            assert "Traceback" not in texts
            assert not find_secrets(texts + json.dumps(result.structured_content, default=str))
            if result.is_error:
                assert texts.strip(), "an error without a message"
                assert "internal error" not in texts, texts[:2000]

        for args in TOOL_EXAMPLES.get(tool, []):  # found once, checked every run
            check_one(args)
        given(args=TOOL_ARGUMENTS[tool])(PROPERTY_SETTINGS(check_one))()
    assert_nothing_changed_at_a_provider(emulator)


def test_an_unknown_tool_is_a_clear_error(hub: Any) -> None:
    with mcp_session(hub) as call:
        result = call("place_all_the_orders", {"quantity": 10**9})
    assert result.is_error
    assert "Unknown tool" in " ".join(getattr(item, "text", "") for item in result.content)


# --- web ----------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/api/positions"),
    ("GET", "/"),
    ("POST", "/positions/refresh"),
    ("GET", "/connections"),
    ("POST", "/connections/probe-trading"),
    ("GET", "/plaid/"),
    ("POST", "/plaid/link"),
    ("POST", "/plaid/update"),
    ("GET", "/plaid/link/<job_id>"),
    ("GET", "/api/plaid/link/<job_id>"),
    ("GET", "/snaptrade/"),
    ("POST", "/snaptrade/connect"),
    ("GET", "/snaptrade/connect/<flow_id>"),
    ("GET", "/snaptrade/connected/<flow_id>"),
    ("GET", "/trades"),
    ("GET", "/trades/<preview_id>"),
    ("POST", "/trades/<preview_id>/confirm"),
    ("POST", "/trades/<preview_id>/reject"),
    ("GET", "/migrations"),
    ("GET", "/migrations/<institution>"),
    ("POST", "/migrations/<institution>/check"),
    ("GET", "/migrations/runs/<int:run_id>"),
    ("GET", "/migrations/runs/<int:run_id>/progress"),
    ("POST", "/migrations/runs/<int:run_id>/execute"),
    ("GET", "/costs"),
    ("GET", "/activity"),
    ("POST", "/activity/sync"),
    ("POST", "/webhooks/plaid"),
    ("POST", "/webhooks/snaptrade"),
    ("GET", "/static/<path:filename>"),
    ("GET", "/no/such/page"),
]
KNOWN_FIELDS = [
    "start_date",
    "end_date",
    "type",
    "account_id",
    "ticker",
    "period",
    "format",
    "refresh_provider",
    "limit",
    "cursor",
    "provider",
    "institution",
    "connection_type",
    "reconnect",
    "email",
    "password",
    "next",
    "csrf_token",
]
FIELD_VALUES = st.one_of(
    st.sampled_from(
        [
            "plaid",
            "snaptrade",
            "summary",
            "full",
            "read",
            "trade",
            "merrill-lynch",
            "Merrill Lynch",
            "demo@brokerage-hub.local",
            "//evil.example/",
            "https://evil.example/",
            str(uuid.uuid4()),
        ]
    ),
    STRINGS,
)
SEGMENTS = st.one_of(
    st.text(min_size=1, max_size=60),
    st.sampled_from(["x", "..", "%00", "a" * 5000, "style.css", "../app.py"]),
)


@st.composite
def web_requests(draw: st.DrawFn) -> dict[str, Any]:
    method, template = draw(st.sampled_from(ROUTES))
    path = template
    for placeholder in (
        "<job_id>",
        "<flow_id>",
        "<preview_id>",
        "<institution>",
        "<path:filename>",
    ):
        if placeholder in path:
            path = path.replace(placeholder, quote(draw(SEGMENTS), safe=""))
    if "<int:run_id>" in path:
        path = path.replace("<int:run_id>", str(draw(st.integers(0, 10**30))))
    keys = st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(min_size=1, max_size=12))
    request: dict[str, Any] = {
        "method": method,
        "path": path,
        "query_string": draw(st.dictionaries(keys, FIELD_VALUES, max_size=4)),
        "headers": {},
    }
    accept = draw(st.sampled_from([None, "application/json", "text/html", "*/*"]))
    if accept:
        request["headers"]["Accept"] = accept
    if method == "POST":
        kind = draw(st.sampled_from(["form", "json", "bytes", "none"]))
        if kind == "form":
            request["data"] = draw(st.dictionaries(keys, FIELD_VALUES, max_size=5))
        elif kind == "json":
            request["json"] = draw(JSON_VALUES)
        elif kind == "bytes":
            request["data"] = draw(st.binary(max_size=300))
            request["content_type"] = draw(
                st.sampled_from(["application/octet-stream", "application/json", "text/plain"])
            )
    return request


# Requests that once broke a route: checked on every run, before the random ones.
ROUTE_EXAMPLES: list[dict[str, Any]] = [
    # secrets.compare_digest raised TypeError (a 500) for a non-ASCII CSRF token.
    {
        "method": "POST",
        "path": "/positions/refresh",
        "query_string": {},
        "headers": {},
        "data": {"csrf_token": "\u00e9t\u00e9", "provider": "plaid"},
    },
    {
        "method": "POST",
        "path": "/logout",
        "query_string": {},
        "headers": {"X-CSRF-Token": "\u00ff"},
    },
    # An API caller posting a wrong password got the HTML login form.
    {
        "method": "POST",
        "path": "/login",
        "query_string": {},
        "headers": {"Accept": "application/json"},
    },
]


def _wants_json(request: dict[str, Any]) -> bool:
    return request["path"].startswith("/api/") or request["headers"].get("Accept") == (
        "application/json"
    )


def _check_response(request: dict[str, Any], response: Any) -> None:
    body = response.get_data(as_text=True)
    # The providers are healthy here: any 5xx would be ours.
    assert response.status_code < 500, f"{request['method']} {request['path']}: {body[:2000]}"
    assert "Traceback" not in body
    assert not find_secrets(body + str(response.headers))
    if response.status_code >= 400 and _wants_json(request):
        assert response.is_json, f"{request['path']} {response.status_code}: {body[:500]}"
        error = response.get_json()["error"]
        assert isinstance(error["type"], str) and error["type"], error
        assert isinstance(error["message"], str) and error["message"], error


@pytest.fixture
def web_hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(
        tmp_path, sqlite_url, emulator, clock, background=run_now, TRADING_ENABLED="true"
    )
    yield built
    built.close()


def test_every_route_of_the_app_is_in_the_fuzzed_list(web_hub: Any) -> None:
    rules = {
        (method, rule.rule)
        for rule in make_app(web_hub).url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert rules <= set(ROUTES), f"add to ROUTES: {sorted(rules - set(ROUTES))}"


@pytest.mark.parametrize("session", ["logged in with CSRF token", "logged in without", "anonymous"])
def test_every_route_answers_arbitrary_input_without_a_server_error(
    web_hub: Any, emulator: Any, session: str
) -> None:
    # Plaid links started by examples: polled at most once an hour.
    client = make_app(web_hub, PLAID_LINK_POLL_SECONDS=3600).test_client()
    session_id = web_hub.web_auth.sessions.start(web_hub.user_email)

    def check_one(request: dict[str, Any]) -> None:
        request = copy.deepcopy(request)  # the header below must not change the drawn value
        with client.session_transaction() as stored:
            stored.clear()
            if session != "anonymous":
                stored["sid"] = session_id
                stored["csrf_token"] = CSRF
        if session == "logged in with CSRF token" and request["method"] == "POST":
            request["headers"]["X-CSRF-Token"] = CSRF
        options = {k: v for k, v in request.items() if k not in ("method", "path")}
        response = client.open(request["path"], method=request["method"], **options)
        _check_response(request, response)

    for request in ROUTE_EXAMPLES:  # found once, checked every run
        check_one(request)
    given(request=web_requests())(PROPERTY_SETTINGS(check_one))()
    assert_nothing_changed_at_a_provider(emulator)
