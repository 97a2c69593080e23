"""The one place provider text is made inert and marked before it leaves through MCP.

Every tool is wrapped at registration (``mcp_tools.registration``), and its dict answer goes
through :func:`marked`: a copy in which each string under a provider field
(``core.untrusted.PROVIDER_TEXT_FIELDS``: names, descriptions, symbols, ...) is
``neutral_text`` (one short line, no markup, no control or bidi characters), with one marker:

    "untrusted_fields": {"fields": ["name", "description", ...], "note": "Values in the ..."}

Error texts are neutralized the same way (:func:`neutral_message`): every error a tool
returns (``boundary.tool_error``) and every ``error`` / ``trading_error`` field of an answer
(a stored preview's refusal, a provider's failure). An error quotes provider text inline (an
account's name, a brokerage's own error detail), with no field to mark, so the whole text
is made inert (only backticks are kept); the project's own error messages use no other
markup for that reason.

The database and the cached views keep what the providers sent: only the copy that leaves
through MCP is changed, and an answer with nothing to change is not copied at all (the warm
``get_positions`` path stays cheap).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from core.errors import MAX_MESSAGE_CHARS, bounded_message
from core.untrusted import PROVIDER_TEXT_FIELDS, UNTRUSTED_NOTE, neutral_text, one_line

MARKER = "untrusted_fields"

_PROVIDER_FIELDS = frozenset(PROVIDER_TEXT_FIELDS)
# Our own sentences that quote provider names ("Interactive Brokers (SnapTrade): ..."):
# kept on one line, but not marked, since the words around the name are ours.
_SENTENCE_FIELDS = frozenset(
    (
        "needs_attention",
        "attention",
        "action",
        "summary",
        "differences",
        "warning",
        "waste",
        "note",
    )
)
# Error texts, ours or a provider's, quoting provider text inline: made inert as a whole.
_ERROR_FIELDS = frozenset(("error", "trading_error"))
# Stands in for a backtick while an error text is cleaned (a private-use character).
_TICK = "\ue000"
# Maps keyed by provider text (institution names, currency codes) down to the numbers.
_KEYED_FIELDS = frozenset(
    (
        "by_institution",
        "by_institution_base",
        "by_provider",
        "by_provider_base",
        "by_security_type",
        "by_security_type_base",
        "by_currency",
        "by_currency_base",
        "totals",
        "totals_before",
        "totals_after",
    )
)


def marked(result: Any) -> Any:
    """``result`` with its provider text neutralized and the marker added, when it is a dict."""
    if not isinstance(result, dict):
        return result
    return {
        **_clean_dict(result, False),
        MARKER: {"fields": list(PROVIDER_TEXT_FIELDS), "note": UNTRUSTED_NOTE},
    }


def neutral_message(text: str) -> str:
    """An error text as it leaves through MCP: long quoted values cut (``bounded_message``),
    then one line of plain text, as provider text is (no markup, control or bidi characters).

    Only backticks are kept: our messages quote commands in them (run `flask --app app
    migrate`), and on one line they can only mark code, never start a block."""
    kept = bounded_message(text).replace(_TICK, "").replace("`", _TICK)
    cleaned = (neutral_text(kept, MAX_MESSAGE_CHARS) or "").replace(_TICK, "`")
    return text if cleaned == text else cleaned  # unchanged: the very object, not a copy


def neutralized(value: Any) -> Any:
    """``value`` with every provider string made inert: the same object when none changed."""
    if isinstance(value, dict):
        return _clean_dict(value, False)
    if isinstance(value, list | tuple):
        return _clean_list(value, None, False)
    return value


# The walk below runs on every answer, the warm get_positions one included (answered inline
# on the event loop), so it is written for speed: exact type checks before isinstance, no
# call for a number, and a memo of the strings already seen (the kept views hand out the
# same string objects on every call, whose hashes Python keeps).
_SCALARS = frozenset((int, float, bool, type(None)))
# Provider string -> its neutral form (the string itself when it needs no change).
_MEMO: dict[str, str] = {}
_MEMO_SIZE = 4096
_MEMO_MAX_CHARS = 256  # longer strings are rare: neutralized each time, never kept


def _text(text: str) -> str:
    seen = _MEMO.get(text)
    if seen is None:
        seen = neutral_text(text) or ""
        if len(text) <= _MEMO_MAX_CHARS:
            if len(_MEMO) >= _MEMO_SIZE:
                _MEMO.clear()
            _MEMO[text] = seen
    # An unchanged string is handed back as the very object: nothing to copy then.
    return text if seen == text else seen


def _string(text: str, field: Any, keyed: bool) -> str:
    if keyed or field in _PROVIDER_FIELDS:
        return _text(text)
    if field in _ERROR_FIELDS:
        return neutral_message(text)
    if field in _SENTENCE_FIELDS:
        return one_line(text) or ""
    return text


def _item(item: Any, field: Any, keyed: bool) -> Any:
    """``item`` found under ``field`` (in a map keyed by provider text when ``keyed``)."""
    kind = type(item)
    if kind is str:
        return _string(item, field, keyed)
    if kind in _SCALARS:
        return item
    if isinstance(item, dict):
        return _clean_dict(item, keyed or field in _KEYED_FIELDS)
    if isinstance(item, list | tuple):
        return _clean_list(item, field, keyed)
    if isinstance(item, str):
        return _string(item, field, keyed)
    return item


def _clean_dict(value: dict[Any, Any], keyed: bool) -> dict[Any, Any]:
    """Copy-on-write: ``value`` itself when nothing changed, so a kept view is never changed."""
    copy: dict[Any, Any] | None = None
    for index, (key, item) in enumerate(value.items()):
        kind = type(item)
        new_item: Any
        # The common cases inline (a call per entry would be most of the cost).
        if kind is str:
            if keyed or key in _PROVIDER_FIELDS:
                new_item = item if _MEMO.get(item) is item else _text(item)
            elif key in _ERROR_FIELDS:
                new_item = neutral_message(item)
            elif key in _SENTENCE_FIELDS:
                new_item = one_line(item) or ""
            else:
                new_item = item
        elif kind in _SCALARS:
            new_item = item
        elif kind is dict:
            new_item = _clean_dict(item, keyed or key in _KEYED_FIELDS)
        elif kind is list:
            new_item = _clean_list(item, key, keyed)
        else:
            new_item = _item(item, key, keyed)
        # Keys of a keyed map are data (an institution, a currency); so are those below it.
        new_key = key
        if keyed and type(key) is str and _MEMO.get(key) is not key:
            new_key = _text(key)
        if new_item is not item or new_key is not key:
            if copy is None:
                copy = dict(islice(value.items(), index))  # the entries before: unchanged
            copy[new_key] = new_item
        elif copy is not None:
            copy[key] = item
    return value if copy is None else copy


def _clean_list(value: list[Any] | tuple[Any, ...], field: Any, keyed: bool) -> Any:
    cleaned: list[Any] | None = None
    for index, item in enumerate(value):
        kind = type(item)
        new_item: Any
        if kind is dict:
            new_item = _clean_dict(item, keyed or field in _KEYED_FIELDS)
        elif kind in _SCALARS:
            new_item = item
        else:
            new_item = _item(item, field, keyed)
        if cleaned is None and new_item is not item:
            cleaned = list(value[:index])
        if cleaned is not None:
            cleaned.append(new_item)
    return value if cleaned is None else cleaned
