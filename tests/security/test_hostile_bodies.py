"""Nested and huge JSON, and numbers past any database integer: refused briefly, everywhere.

``POST /webhooks/snaptrade`` with 60,000 ``[`` once answered 500 (a ``RecursionError``
escaped the JSON parser, where only ``ValueError`` was caught), and a body nested just
under the parser's limit parsed and then broke the signature's re-serialization. Now:

* every route of the app (read from its URL map, so a new route is covered) answers
  deeply nested, near-limit, non-finite and oversized JSON bodies, and numbers past any
  database integer in its path, without a 5xx or a traceback; a webhook route answers 401;
* every number argument of every MCP tool (read from ``tools/list``) and every number
  option of every CLI command (read from the CLI) refuses 2**63, 10**30 and friends with an
  error naming the argument; every tool argument refuses a nested list the same way;
* over a real stdio server, a request nested past the transport's parser is dropped and
  the next request is answered;
* a provider's Retry-After of "inf" or "1e999" is no wait at all, never an overflow.

Provider answers nested or huge are in the fault matrix (``tests/providers/test_fault_matrix.py``).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server import build_server
from providers.calls import retry_after_seconds
from sandbox import data
from tests.conftest import FakeClock, make_services, run_now
from tests.security.test_bad_input import mcp_session
from tests.web_fixtures import make_app

CSRF = "hostile-bodies-csrf-token-0123456789abcdef"
DEEP = "[" * 60_000
NEAR_THE_PARSER_LIMIT = [
    '{"eventTimestamp":"2026-11-02T14:30:00Z","a":' + "[" * depth + "]" * depth + "}"
    for depth in range(600, 1001)  # every depth: a narrow band parses, then overflows re-encoded
]
BODIES = {
    "60,000 [": DEEP,
    "60,000 {": '{"a":' * 60_000,
    "nested near the parser's limit": NEAR_THE_PARSER_LIMIT[-5],
    "NaN": '{"webhookId":NaN}',
    "1e999": '{"a":1e999}',
    "a 4,400-digit number": '{"a":' + "9" * 4400 + "}",
    "over the size limit": "[" + "0," * 40_000 + "0]",
}
OVERFLOWING = [2**63, 2**64, 10**30, -(2**63) - 1]
# What a query string may carry for a number: too big, or digits int() refuses or misreads.
QUERY_NUMBERS = [str(2**63), "²", "--1", "١", "1_000", " 7 "]
PLACEHOLDER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>")  # <name>, <int:name>, <any(a,b):n>


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def forged_cursors(hub: Any) -> list[str]:
    """Real next_cursors of activities and of positions with their offset set past any
    database integer, and cursors that are JSON nested too deep or not finite."""
    real = [
        hub.activities.activities(limit=1)["next_cursor"],
        hub.position_views.answer("full", None, limit=1)["next_cursor"],
    ]
    forged = []
    for cursor in real:
        fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        forged += [encoded(json.dumps({**fields, "o": offset})) for offset in OVERFLOWING]
    return [*forged, encoded("[" * 140), encoded('{"w":"activities","g":"0","o":NaN}')]


def encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def hub(tmp_path: Path, sqlite_url: str, emulator: Any, clock: FakeClock) -> Iterator[Any]:
    built = make_services(
        tmp_path, sqlite_url, emulator, clock, background=run_now, TRADING_ENABLED="true"
    )
    yield built
    built.close()


def stored_events(hub: Any) -> int:
    from sqlalchemy import func, select

    from services.models import WebhookEvent

    with hub.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(WebhookEvent)).scalar_one())


# --- web ------------------------------------------------------------------------------------


WEBHOOKS = {"/webhooks/snaptrade": "Signature", "/webhooks/plaid": "Plaid-Verification"}


def test_a_webhook_body_nested_at_any_depth_is_refused_with_401(hub: Any) -> None:
    client = make_app(hub).test_client()
    for path, header in WEBHOOKS.items():
        for body in [DEEP, *NEAR_THE_PARSER_LIMIT, *BODIES.values()]:
            answer = client.post(path, data=body.encode(), headers={header: "x"})
            text = answer.get_data(as_text=True)
            assert answer.status_code in (401, 413), f"{path} {len(body)}: {text[:500]}"
            assert "Traceback" not in text and len(text) < 1000
    assert stored_events(hub) == 0


def _filled(rule: Any, value: int) -> str:
    """The path of ``rule`` with every int argument set to ``value`` and the others "x"."""
    return PLACEHOLDER.sub(
        lambda match: str(value) if match.group(1) == "int" else "x", str(rule.rule)
    )


def test_every_route_answers_hostile_json_and_huge_numbers_without_a_server_error(
    hub: Any,
) -> None:
    app = make_app(hub)
    client = app.test_client()
    rules = [rule for rule in app.url_map.iter_rules()]
    assert any("<int:" in rule.rule for rule in rules)  # numbers in paths are exercised

    for rule in rules:
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for path in dict.fromkeys(_filled(rule, value) for value in OVERFLOWING):
                for (name, body), number in zip(BODIES.items(), cycle(QUERY_NUMBERS), strict=False):
                    with client.session_transaction() as stored:
                        # A new session each time: one of the routes is POST /logout.
                        stored["sid"] = hub.web_auth.sessions.start(hub.user_email)
                        stored["csrf_token"] = CSRF
                    answer = client.open(
                        path,
                        method=method,
                        data=body.encode(),
                        content_type="application/json",
                        headers={
                            "X-CSRF-Token": CSRF,
                            "Accept": "application/json",
                            **{header: "x" for header in WEBHOOKS.values()},
                        },
                        query_string={"limit": number, "cursor": body[:300]},
                    )
                    text = answer.get_data(as_text=True)
                    assert answer.status_code < 500, f"{method} {path} {name}: {text[:500]}"
                    assert "Traceback" not in text


# --- MCP --------------------------------------------------------------------------------------

# A plausible value for each argument a tool requires: only the argument under test is wrong.
# The account refuses trading at the symbol search, so nothing reaches an order.
PLAUSIBLE = {
    "ticker": "AAPL",
    "quantity": 1,
    "side": "BUY",
    "account_id": data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"],
    "order_type": "Limit",
    "limit_price": 10,
    "preview_id": "no-such-preview-0123456789",
    "institution": "merrill-lynch",
}


def _tools(hub: Any) -> list[Any]:
    import mcp

    async def listed() -> list[Any]:
        async with mcp.Client(build_server(hub)) as client:
            return list((await client.list_tools()).tools)

    return anyio.run(listed)


def _kinds(schema: dict[str, Any]) -> set[str]:
    options = schema.get("anyOf") or [schema]
    return {str(option.get("type")) for option in options}


def test_every_tool_argument_refuses_huge_numbers_forged_cursors_and_nesting_naming_it(
    hub: Any, emulator: Any
) -> None:
    tools = _tools(hub)
    cursors = forged_cursors(hub)
    with mcp_session(hub) as call:
        for tool in tools:
            properties = tool.input_schema.get("properties", {})
            required = tool.input_schema.get("required", [])
            assert set(required) <= set(PLAUSIBLE), f"add to PLAUSIBLE: {tool.name} {required}"
            base = {name: PLAUSIBLE[name] for name in required}
            for name, schema in properties.items():
                hostile: list[Any] = [nested(150), {"a": nested(100)}]
                if _kinds(schema) & {"integer", "number"}:
                    hostile += [*OVERFLOWING, 1e308, -1e308]
                if name == "cursor":
                    hostile += cursors
                for value in hostile:
                    result = call(tool.name, {**base, name: value})
                    text = " ".join(getattr(item, "text", "") for item in result.content)
                    assert "internal error" not in text and "Traceback" not in text, text
                    assert result.is_error, f"{tool.name}({name}={str(value)[:40]}) answered"
                    assert name in text, f"{tool.name}({name}): {text[:300]}"
    assert emulator.controls.calls("snaptrade /trade/impact") == 0


def test_over_stdio_a_request_nested_past_the_parser_is_dropped_and_a_forged_cursor_refused(
    tmp_path: Path, emulator: Any
) -> None:
    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stdio.db'}",
        "PLAID_BASE_URL": emulator.plaid_url,
        "SNAPTRADE_BASE_URL": emulator.snaptrade_url,
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "mcp_server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert server.stdin is not None and server.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in server.stdout], daemon=True
    ).start()

    def send(message: str) -> None:
        assert server.stdin is not None
        server.stdin.write(message.encode() + b"\n")
        server.stdin.flush()

    def answer() -> dict[str, Any]:
        return dict(json.loads(lines.get(timeout=60)))

    def tool_call(number: int, tool: str, arguments: str) -> str:
        params = f'{{"name":"{tool}","arguments":{arguments}}}'
        return f'{{"jsonrpc":"2.0","id":{number},"method":"tools/call","params":{params}}}'

    try:
        send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "hostile", "version": "1"},
                    },
                }
            )
        )
        assert answer()["id"] == 1
        send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
        send(tool_call(2, "get_activities", '{"limit":1}'))
        page = json.loads(answer()["result"]["content"][0]["text"])
        fields = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=="))
        forged = encoded(json.dumps({**fields, "o": 2**63}))

        send(tool_call(3, "get_activities", '{"cursor":' + DEEP + "]" * 60_000 + "}"))
        send(tool_call(4, "get_activities", json.dumps({"cursor": nested(150)})))
        send(tool_call(5, "get_activities", json.dumps({"cursor": forged})))
        send(tool_call(6, "get_provider_costs", "{}"))

        nested_refused, forged_refused, costs = answer(), answer(), answer()
        assert nested_refused["id"] == 4 and nested_refused["result"]["isError"] is True
        assert "cursor must be a string" in nested_refused["result"]["content"][0]["text"]
        assert forged_refused["id"] == 5 and forged_refused["result"]["isError"] is True
        assert "cursor 'eyJ" in forged_refused["result"]["content"][0]["text"]
        assert costs["id"] == 6 and not costs["result"].get("isError")
    finally:
        server.stdin.close()
        server.wait(timeout=30)


# --- CLI ----------------------------------------------------------------------------------------

NUMBER_TEXTS = [str(v) for v in OVERFLOWING] + ["nan", "inf", "-inf", "1e999", "²"]
ARGUMENTS = {"institution": "merrill-lynch", "preview_id": "no-such-preview-0123456789"}


def test_every_number_and_cursor_a_command_takes_refuses_hostile_values_naming_it(
    hub: Any,
) -> None:
    import click

    app = make_app(hub)
    runner = app.test_cli_runner()
    cursors = forged_cursors(hub)
    tried = 0
    for name, command in sorted(app.cli.commands.items()):
        hostile = {
            p: NUMBER_TEXTS if p.type.name in ("integer", "float") else cursors
            for p in command.params
            if isinstance(p, click.Option)
            and (p.type.name in ("integer", "float") or p.name == "cursor")
        }
        required = [p for p in command.params if isinstance(p, click.Argument) and p.required]
        for option, texts in hostile.items():
            for text in texts:
                args = [name, *(ARGUMENTS[p.name or ""] for p in required)]
                result = runner.invoke(args=[*args, f"{option.opts[0]}={text}"])
                tried += 1
                assert result.exception is None or isinstance(result.exception, SystemExit), (
                    f"{args} {option.opts[0]}={text}: {result.exception!r}"
                )
                if result.exit_code == 2:  # the terminal's own refusal: not a number at all
                    assert f"Invalid value for '{option.opts[0]}'" in result.stderr
                    continue
                assert result.exit_code == 1, f"{args} {option.opts[0]}={text}: {result.output}"
                (line,) = result.stderr.strip().splitlines()
                assert json.loads(line)["error"]["field"] == option.name, line
    assert tried >= 3 * len(NUMBER_TEXTS) + 2 * len(cursors)  # --limit twice, --tolerance


# --- provider answers ---------------------------------------------------------------------------


def test_a_retry_after_past_any_number_is_no_wait_while_seconds_are_still_read() -> None:
    for header in ("inf", "1e999", "-inf", "nan", "Infinity"):
        assert retry_after_seconds({"Retry-After": header}) is None, header
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"Retry-After": "-3"}) == 0.0


def _attacker_jwt(claims: dict[str, Any], kid: Any = "made-up-kid") -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


HOSTILE_CLAIM_VALUES = [
    10**400,
    -(10**400),
    2**63,
    1e308,
    "é",
    "\u202e\u0000",
    "0" * 5000,
    None,
    True,
    [1, [2, [3]]],
    {"a": {"b": 1}},
]


def test_hostile_webhook_headers_and_claims_are_refused_with_401_never_a_500(
    hub: Any, clock: FakeClock
) -> None:
    """Every header character and every claim value an outsider can choose: a Signature
    with non-ASCII characters, an ``iat`` past any date, a body hash that is no string."""
    import hashlib

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    app = make_app(hub, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    body = b'{"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE", "item_id": "x"}'
    digest = hashlib.sha256(body).hexdigest()
    now = int(clock().timestamp())
    headers = [
        ("/webhooks/snaptrade", "Signature", "é"),
        ("/webhooks/snaptrade", "Signature", "\u00ff" * 100),
    ]
    for value in HOSTILE_CLAIM_VALUES:
        headers.append(
            (
                "/webhooks/plaid",
                "Plaid-Verification",
                _attacker_jwt({"iat": value, "request_body_sha256": digest}),
            )
        )
        headers.append(
            (
                "/webhooks/plaid",
                "Plaid-Verification",
                _attacker_jwt({"iat": now, "request_body_sha256": value}),
            )
        )
    for path, name, value in headers:
        answer = client.post(path, data=body, headers={name: value})
        text = answer.get_data(as_text=True)
        assert answer.status_code == 401, (
            f"{path} {value[:80]!r}: {answer.status_code} {text[:300]}"
        )

    latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=300)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(sorted(WEBHOOKS)), value=latin1)
    def any_header(path: str, value: str) -> None:
        answer = client.post(path, data=body, headers={WEBHOOKS[path]: value})
        assert answer.status_code in (401, 429), (path, value, answer.get_data(as_text=True)[:300])

    any_header()
    assert stored_events(hub) == 0
