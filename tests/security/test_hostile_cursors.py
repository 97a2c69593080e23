"""A forged cursor gets a short refusal naming ``cursor`` on every surface, never a crash.

A cursor is base64url JSON with the fields ``w`` (what it pages), ``g`` (the generation it
was cut from) and ``o`` (the offset). Taking a real ``next_cursor`` and setting ``o`` to
2**63 once answered 500 on ``/activity``, printed a traceback from ``activities --cursor``
and "internal error" from ``get_activities``: the offset reached the database and overflowed
its integer. Here hypothesis forges cursors (valid base64 of JSON with huge, negative and
fractional numbers, strings, lists, deep nesting, missing and extra fields, NaN and 1e999,
and text that is not base64 at all) for every surface that takes one: the web page and API,
the MCP tools and the CLI commands. A cursor is answered only when it is exactly one we
could have written (the three fields, this generation's tag, an offset from 0 to
``MAX_OFFSET``); anything else is a 4xx, a tool error or one line on stderr naming
``cursor``. The offset attack itself runs on SQLite and on Postgres.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.paging import MAX_CURSOR_LENGTH, MAX_OFFSET
from tests.conftest import FakeClock, make_services
from tests.security.test_bad_input import mcp_session
from tests.web_fixtures import make_app

PROPERTY_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Offsets past every database integer, and just inside the bound.
OVERFLOWING = [2**63, 2**63 - 1, 2**64, 10**30, -(2**63) - 1, -1, MAX_OFFSET + 1]


def encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decoded(cursor: str) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return fields


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# --- the surfaces --------------------------------------------------------------------------


@dataclass
class Answer:
    answered: bool  # a page came back
    refusal: str  # the error as shown ("" when answered)


@dataclass(frozen=True)
class Surface:
    what: str  # the format of the cursors it takes
    ask: Callable[[Any, str], Answer]


def _web(path: str, **query: str) -> Callable[[Any, str], Answer]:
    def ask(session: Any, cursor: str) -> Answer:
        response = session.client.get(path, query_string={**query, "cursor": cursor})
        body = response.get_data(as_text=True)
        assert response.status_code < 500 and "Traceback" not in body, body[:2000]
        if response.status_code == 200:
            return Answer(True, "")
        assert 400 <= response.status_code < 500, response.status_code
        error = response.get_json()["error"]
        assert error["field"] == "cursor", error
        return Answer(False, error["message"])

    return ask


def _mcp(tool: str, arguments: dict[str, Any]) -> Callable[[Any, str], Answer]:
    def ask(session: Any, cursor: str) -> Answer:
        result = session.call(tool, {**arguments, "cursor": cursor})
        text = " ".join(getattr(item, "text", "") for item in result.content)
        assert "Traceback" not in text and "internal error" not in text, text[:2000]
        return Answer(not result.is_error, text if result.is_error else "")

    return ask


def _cli(*args: str) -> Callable[[Any, str], Answer]:
    def ask(session: Any, cursor: str) -> Answer:
        result = session.cli.invoke(args=[*args, f"--cursor={cursor}"])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        if result.exit_code == 0:
            return Answer(True, "")
        assert result.exit_code == 1, result.output
        (line,) = result.stderr.strip().splitlines()
        error = json.loads(line)["error"]
        assert error["field"] == "cursor", error
        return Answer(False, error["message"])

    return ask


SURFACES = {
    "web GET /activity": Surface("activities", _web("/activity")),
    "web GET /api/positions": Surface("list", _web("/api/positions", format="list")),
    "mcp get_activities": Surface("activities", _mcp("get_activities", {})),
    "mcp get_positions": Surface("list", _mcp("get_positions", {"format": "list"})),
    "cli activities": Surface("activities", _cli("activities")),
    "cli positions": Surface("list", _cli("positions", "--format", "list")),
}


@dataclass
class Session:
    hub: Any
    client: Any
    cli: Any
    call: Callable[[str, dict[str, Any]], Any]

    def real_cursor(self, what: str) -> str:
        """A next_cursor the service wrote, for the surface's format."""
        if what == "activities":
            cursor = self.hub.activities.activities(limit=1)["next_cursor"]
        else:
            cursor = self.hub.position_views.answer(what, None, limit=1)["next_cursor"]
        assert cursor, what
        return str(cursor)


@pytest.fixture
def session_on(tmp_path: Path, emulator: Any, clock: FakeClock) -> Iterator[Callable[[str], Any]]:
    """A logged-in web client, a CLI runner and an MCP session on one service layer."""
    with ExitStack() as stack:

        def start(database_url: str) -> Session:
            hub = make_services(tmp_path, database_url, emulator, clock)
            stack.callback(hub.close)
            app = make_app(hub)
            client = app.test_client()
            session_id = hub.web_auth.sessions.start(hub.user_email)
            with client.session_transaction() as stored:
                stored["sid"] = session_id
            call = stack.enter_context(mcp_session(hub))
            return Session(hub, client, app.test_cli_runner(), call)

        yield start


# --- the attack of the issue, on both databases ----------------------------------------------


@pytest.mark.parametrize("surface_name", sorted(SURFACES))
def test_an_offset_beyond_any_database_integer_is_refused_naming_the_cursor(
    session_on: Callable[[str], Session], database_url: str, surface_name: str
) -> None:
    surface = SURFACES[surface_name]
    session = session_on(database_url)
    real = decoded(session.real_cursor(surface.what))

    for offset in OVERFLOWING:
        answer = surface.ask(session, encoded(json.dumps({**real, "o": offset})))
        assert not answer.answered, offset
        assert "cursor" in answer.refusal and len(answer.refusal) < 700, answer.refusal

    # The largest offset allowed is still a page (an empty one), on either database.
    assert surface.ask(session, encoded(json.dumps({**real, "o": MAX_OFFSET}))).answered


# --- forged cursors of every shape ---------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from(OVERFLOWING),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 3).map(float),
)
VALUES = st.one_of(
    NUMBERS,
    st.none(),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(1, 70).map(nested),
)
# JSON that json.dumps would not write: non-finite and oversized numbers, deep nesting.
RAW_TEXTS = [
    "NaN",
    "1e999",
    "[" * 140,
    "[" * 60 + "]" * 60,
    '{"o":' * 30 + "1" + "}" * 30,
    '{"w":"{what}","g":"{tag}","o":1e999}',
    '{"w":"{what}","g":"{tag}","o":-Infinity}',
    '{"w":"{what}","g":"{tag}","o":NaN}',
    '{"w":"{what}","g":"{tag}","o":9223372036854775808}',
    '{"w":"{what}","g":"{tag}","o":1' + "0" * 100 + "}",
    '{"w":"{what}","g":"{tag}","o":1,"o":-1}',
    '{"w":"{what}","g":["{tag}"],"o":1}',
    '{"w":"{what}","g":"{tag}","o":1,"x":1}',
]


@st.composite
def forged_cursors(draw: st.DrawFn, what: str, tag: str) -> str:
    kind = draw(st.sampled_from(["fields", "fields", "raw", "text", "bytes"]))
    if kind == "fields":
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "w": st.one_of(st.just(what), VALUES),
                    "g": st.one_of(st.just(tag), VALUES),
                    "o": st.one_of(st.integers(0, 5), VALUES),
                },
            )
        )
        fields.update(draw(st.dictionaries(st.text(max_size=3), VALUES, max_size=1)))
        return encoded(json.dumps(fields))
    if kind == "raw":
        text = draw(st.sampled_from(RAW_TEXTS))
        return encoded(text.replace("{what}", what).replace("{tag}", tag))
    if kind == "bytes":
        raw = draw(st.binary(min_size=1, max_size=150))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return draw(st.text(min_size=1, max_size=260))  # an empty one means "no cursor"


def one_we_could_have_written(cursor: str, what: str, tag: str) -> bool:
    if len(cursor) > MAX_CURSOR_LENGTH:
        return False
    try:
        fields = decoded(cursor)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(fields, dict)
        and set(fields) == {"w", "g", "o"}
        and fields["w"] == what
        and fields["g"] == tag
        and type(fields["o"]) is int
        and 0 <= fields["o"] <= MAX_OFFSET
    )


@pytest.mark.parametrize("surface_name", sorted(SURFACES))
def test_a_forged_cursor_is_answered_only_when_it_is_one_we_could_have_written(
    session_on: Callable[[str], Session], sqlite_url: str, surface_name: str
) -> None:
    surface = SURFACES[surface_name]
    session = session_on(sqlite_url)
    tag = decoded(session.real_cursor(surface.what))["g"]

    def check(cursor: str) -> None:
        answer = surface.ask(session, cursor)
        assert answer.answered == one_we_could_have_written(cursor, surface.what, tag), cursor
        if not answer.answered:
            assert "cursor" in answer.refusal and len(answer.refusal) < 700, answer.refusal

    given(cursor=forged_cursors(surface.what, tag))(PROPERTY_SETTINGS(check))()
