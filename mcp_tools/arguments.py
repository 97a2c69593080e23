"""Argument errors a model can read: one line naming the argument and what it may be.

The SDK checks a call's arguments against the tool's signature (pydantic) before the tool
runs, and by default answers with pydantic's own report: several lines per argument, each
with an errors.pydantic.dev link (a JSON ``true`` for a number gives over 400 characters).
:func:`shorten_argument_errors` gives a registered tool an argument model that reports
instead, for example::

    quantity must be a number, not true
    side must be one of "BUY", "SELL", not "HOLD"
    limit is required: a whole number

The error is still a pydantic ``ValidationError`` (the SDK answers it as a tool error and
logs the argument names), with the same argument names, only its text is ours. The JSON
schema the client sees is unchanged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from mcp_tools.untrusted import neutral_message

log = logging.getLogger(__name__)

# How much of a wrong value the error quotes.
SHOWN_CHARS = 40
_JSON_TYPES = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


class ArgumentError(ValidationError):
    """A ``ValidationError`` whose text is one line per argument, in words."""

    def __str__(self) -> str:
        return neutral_message("; ".join(error["msg"] for error in self.errors()))


def allowed(schema: dict[str, Any], definitions: dict[str, Any] | None = None) -> str:
    """What a JSON schema allows, in words: "a number", "one of "BUY", "SELL"", ..."""
    definitions = definitions or {}
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.rsplit("/", 1)[-1] in definitions:
        return allowed(definitions[reference.rsplit("/", 1)[-1]], definitions)
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        said: list[str] = []
        for option in options:
            text = allowed(option, definitions) if isinstance(option, dict) else "a value"
            if text not in said:
                said.append(text)
        if "a whole number" in said and "a number" in said:
            said.remove("a whole number")  # every whole number is a number
        return " or ".join(said)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_JSON_TYPES.get(str(k), str(k)) for k in kind)
    return _JSON_TYPES.get(str(kind), "a valid value")


def _shown(value: Any) -> str:
    """A wrong value as JSON, cut short: the model sees what it sent, never all of it."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except ValueError:
        text = repr(value)
    except RecursionError:  # nested too deeply to write out: its kind says enough
        text = f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def argument_error(exc: ValidationError, parameters: dict[str, Any]) -> ArgumentError:
    """``exc`` (pydantic's report on a call's arguments) as one line per argument."""
    properties = parameters.get("properties") or {}
    definitions = parameters.get("$defs") or {}
    lines: dict[str, InitErrorDetails] = {}
    for error in exc.errors():
        location = error.get("loc") or ("arguments",)
        name = str(location[0])
        if name in lines:
            continue  # one line per argument (a union reports each of its options)
        schema = properties.get(name)
        if not isinstance(schema, dict):
            text = f"{name} is not valid: {error.get('msg', 'not allowed')}"
        elif error.get("type") == "missing":
            text = f"{name} is required: {allowed(schema, definitions)}"
        else:
            text = (
                f"{name} must be {allowed(schema, definitions)}, not {_shown(error.get('input'))}"
            )
        lines[name] = {
            "type": PydanticCustomError("invalid_argument", "{text}", {"text": text}),
            "loc": (name,),
            "input": error.get("input"),
        }
    return ArgumentError.from_exception_data(exc.title, list(lines.values()))


def shorten_argument_errors(server: Any, name: str) -> None:
    """Give the registered tool ``name`` an argument model whose errors are :class:`ArgumentError`.

    The SDK keeps its tools in its tool manager; when it cannot be reached (another SDK
    version), the tool keeps pydantic's own report, and the tests say so.
    """
    manager = getattr(server, "_tool_manager", None)
    tool = manager.get_tool(name) if manager is not None else None
    metadata = getattr(tool, "fn_metadata", None)
    if tool is None or metadata is None:
        log.warning("tool %s keeps pydantic's argument errors: its model is out of reach", name)
        return
    original = metadata.arg_model
    parameters = dict(tool.parameters)
    shortened: Any = None

    def model_validate(cls: Any, obj: Any, **options: Any) -> Any:
        try:
            return super(shortened, cls).model_validate(obj, **options)
        except ValidationError as exc:
            if isinstance(exc, ArgumentError):
                raise
            raise argument_error(exc, parameters) from None

    shortened = type(
        original.__name__,
        (original,),
        {"model_validate": classmethod(model_validate), "__module__": __name__},
    )
    metadata.arg_model = shortened
