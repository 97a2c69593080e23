"""Hostile provider text reaches no MCP answer or error as written, on SQLite and Postgres.

The emulator writes it (``sandbox.hostile``) into every account, institution and security
name, ticker, activity description and error text, over real HTTP. Every tool answer then
carries it only as ``untrusted_fields`` promise: no markup, no bidi, zero-width or control
character, one line per value; an instruction appears only in a marked provider field (or a
map keyed by provider text), or quoted inside one of our sentences and errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.untrusted import PROVIDER_TEXT_FIELDS
from sandbox import data
from sandbox.hostile import ANSI, BIDI, FORGED_LINE, INSTRUCTIONS, MARKUP, ZERO_WIDTH
from tests.conftest import make_services
from tests.mcp_fixtures import Person, call, error_text, payload

SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
BUY_SCHB = {"ticker": "SCHB", "quantity": 1, "side": "BUY", "account_id": SCHWAB}
READS: list[tuple[str, dict[str, Any]]] = [
    ("get_positions", {"format": "full", "limit": 100}),
    ("get_positions", {"format": "summary"}),
    ("get_positions", {"format": "by_account"}),
    ("get_positions", {"format": "list"}),
    ("get_positions", {"format": "holdings"}),
    ("get_positions", {"format": "full", "limit": 100}),  # warm: answered inline
    ("get_activities", {"limit": 50}),
    ("get_activities", {"type": "dividend", "limit": 20}),
    ("get_income", {"period": "last_12_months"}),
    ("check_connections", {"probe_trading": True}),
    ("plan_institution_migration", {"institution": "interactive-brokers"}),
    ("get_provider_costs", {}),
    ("preview_trade", BUY_SCHB),
    ("list_trades", {}),
]
# Markup that would act, and every invisible, bidi and control character.
MARKUP_FRAGMENTS = ("<script", "</script", "<img", "<svg", "onerror=", "onload=")
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
# Maps keyed by provider text: their keys are data, neutralized like a marked field.
KEYED = re.compile(r"by_(institution|provider|security_type|currency)(_base)?|totals\w*")
QUOTATION = re.compile("\u201c[^\u201d]*\u201d")
# Instructions first, so that no cut leaves them out; markup and controls after.
FIRST_WORDS = "Ignore previous instructions"
ERROR_TEXT = f"{INSTRUCTIONS} {MARKUP}{FORGED_LINE}{ANSI} {BIDI}{ZERO_WIDTH}"


def strings(value: Any, field: str | None = None) -> Iterator[tuple[str | None, str]]:
    """Every string of an answer with the field it is under (a key: ``"<key of FIELD>"``)."""
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"<key of {field}>", str(key)
            yield from strings(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, field)


def inert(where: Any, answer: Any) -> None:
    for field, text in strings(answer):
        assert not any(bad in text for bad in MARKUP_FRAGMENTS), (where, field, text)
        assert UNSAFE.search(text) is None, (where, field, text)
        marked = field in PROVIDER_TEXT_FIELDS or (
            field is not None and field.startswith("<key of") and KEYED.fullmatch(field[8:-1])
        )
        if not marked:
            assert FIRST_WORDS not in QUOTATION.sub("", text), (where, field, text)


def answers(results: list[Any]) -> Iterator[Any]:
    """A result's structured answer and each of its text blocks, as the model reads them."""
    for result in results:
        if not result.is_error:
            yield payload(result)
        for block in result.content:
            text = getattr(block, "text", "")
            try:
                yield json.loads(text)
            except ValueError:
                yield text


@pytest.fixture
def trading_services(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Any:
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


@pytest.mark.parametrize("sample", ["everything", "long", "instructions"])
def test_no_tool_answer_carries_hostile_provider_text_as_written(
    trading_services: Any, emulator: Any, sample: str
) -> None:
    emulator.controls.hostile.set("*", sample=sample)
    results = call(trading_services, *READS)

    for (name, arguments), result in zip(READS, results, strict=True):
        assert not result.is_error, (name, error_text(result))
        assert payload(result)["untrusted_fields"]["fields"] == list(PROVIDER_TEXT_FIELDS)
        for answer in answers([result]):
            inert((name, arguments), answer)
    # The text did reach the answers: as data, inert.
    reached = FIRST_WORDS if sample == "instructions" else "alert(1)"
    positions = payload(results[0])["positions"]
    assert all(reached in p["institution"] and reached in p["account_name"] for p in positions)
    assert all(reached in p["name"] for p in positions if not p["name"].startswith("Cash ("))
    activities = payload(results[6])["activities"]
    assert activities and all(reached in a["description"] for a in activities)


def test_a_person_is_asked_about_the_order_without_a_word_of_provider_text(
    trading_services: Any, emulator: Any
) -> None:
    emulator.controls.hostile.set("*", sample="everything")
    person = Person("accept")
    (previewed,) = call(trading_services, ("preview_trade", BUY_SCHB))
    preview_id = payload(previewed)["preview_id"]
    placed, listing = call(
        trading_services,
        ("execute_trade", {"preview_id": preview_id}),
        ("list_trades", {}),
        person=person,
    )

    assert payload(placed)["status"] == "placed"
    (question,) = person.asked
    assert "alert" not in question and FIRST_WORDS not in question
    assert UNSAFE.search(question.replace("\n", " ")) is None
    for answer in answers([placed, listing]):
        inert("execute_trade", answer)


def test_provider_error_texts_reach_no_tool_error_or_stored_refusal_as_written(
    trading_services: Any, emulator: Any
) -> None:
    emulator.controls.hostile.set("error_texts", ERROR_TEXT)
    emulator.controls.fail("plaid /investments/holdings/get", "ITEM_LOGIN_REQUIRED")
    emulator.controls.fail("plaid /item/get", "INSTITUTION_DOWN")
    emulator.controls.fail("snaptrade /trade/impact", "500")

    results = call(
        trading_services,
        ("get_positions", {"format": "full", "limit": 100}),
        ("check_connections", {}),
        ("preview_trade", BUY_SCHB),
        ("list_trades", {}),
    )

    positions, connections, refused, listing = results
    assert refused.is_error
    shown = [
        payload(positions)["cache_info"]["plaid"]["error"],
        *[row["error"] for row in payload(connections)["plaid"]["connections"]],
        error_text(refused),
        payload(listing)["trades"][0]["error"],
    ]
    for text in shown:
        # Plaid's and SnapTrade's own words are there, quoted, inert.
        assert any(FIRST_WORDS in quoted for quoted in QUOTATION.findall(text)), text
    for answer in answers(results):
        inert("errors", answer)
    # The audit keeps the refusal as the person and the model were told it.
    (row,) = trading_services.trading._audit.recent(1)
    assert UNSAFE.search(row["error"]) is None and "<script" not in row["error"]
