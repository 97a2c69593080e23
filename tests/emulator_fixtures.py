"""Helpers for the emulator tests: real SDK clients, a movable clock, contract checks.

Imported explicitly by tests/emulator/test_emulator_*.py and
tests/providers/test_request_contract.py (this is not a conftest).
"""

from __future__ import annotations

import copy
import functools
import io
import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlencode, urlsplit

import plaid
import pytest
import requests
import urllib3
import yaml
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30ReadValidator
from plaid.api import plaid_api
from plaid.exceptions import OpenApiException
from plaid.model.plaid_error import PlaidError
from plaid.model_utils import (
    ModelComposed,
    ModelSimple,
    OpenApiModel,
    validate_and_convert_types,
)
from snaptrade_client import SnapTrade, SnapTradeAuth

from sandbox import demo
from sandbox.server import EmulatorHandle
from sandbox.snaptrade_api import request_signature

# SnapTrade's own spec, copied into the repo with its licence (see tests/specs/README.md).
# Plaid's spec is not copied (its licence is not stated): PlaidModels checks Plaid traffic.
SPECS_DIR = Path(__file__).resolve().parent / "specs"
SNAPTRADE_SPEC = SPECS_DIR / "snaptrade-api.yaml"


class UserCredentials(TypedDict):
    user_id: str
    user_secret: str


DEMO_USER = UserCredentials(user_id=demo.SNAPTRADE_USER_ID, user_secret=demo.SNAPTRADE_USER_SECRET)


class OffsetClock:
    """The emulator's clock: real time plus a movable offset.

    The SnapTrade SDK stamps requests with the real time, so moving this offset
    is how a test makes those stamps look stale or a trade id look old.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def plaid_client(
    handle: EmulatorHandle,
    *,
    client_id: str = demo.PLAID_CLIENT_ID,
    secret: str = demo.PLAID_SECRET,
) -> plaid_api.PlaidApi:
    configuration = plaid.Configuration(
        host=handle.plaid_url, api_key={"clientId": client_id, "secret": secret}
    )
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))


def snaptrade_client(
    handle: EmulatorHandle,
    *,
    consumer_key: str = demo.SNAPTRADE_CONSUMER_KEY,
    client_id: str = demo.SNAPTRADE_CLIENT_ID,
) -> SnapTrade:
    auth = SnapTradeAuth.commercial_api_key(consumer_key=consumer_key, client_id=client_id)
    return SnapTrade(auth=auth, host=handle.snaptrade_url)


class WireRecorder:
    """Keeps the raw bytes of every HTTP answer an SDK client receives.

    Both SDKs talk through a urllib3 pool manager; wrapping its ``request`` lets
    a test check the exact JSON the emulator sent while the SDK still parses it.
    """

    def __init__(self, rest_client: Any) -> None:
        self.answers: list[tuple[int, bytes]] = []
        pool = rest_client.pool_manager
        original: Callable[..., Any] = pool.request

        def recording_request(*args: Any, **kwargs: Any) -> Any:
            response = original(*args, **kwargs)
            self.answers.append((response.status, response.data))
            return response

        pool.request = recording_request

    @classmethod
    def on_plaid(cls, client: plaid_api.PlaidApi) -> WireRecorder:
        return cls(client.api_client.rest_client)

    @classmethod
    def on_snaptrade(cls, client: SnapTrade) -> WireRecorder:
        return cls(client.account_information.api_client.rest_client)

    def last_json(self) -> Any:
        assert self.answers, "no HTTP answer was recorded"
        return json.loads(self.answers[-1][1])


class AnswerTap:
    """Keeps every HTTP answer that any SDK client in this process receives, with its URL.

    A WireRecorder needs the client in hand; the project builds its clients inside
    its services. Both SDKs send through urllib3's PoolManager, so wrapping that
    class's ``request`` reaches those clients too (``monkeypatch`` undoes it).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: list[tuple[str, str, int, bytes]] = []  # method, url, status, body
        original: Callable[..., Any] = urllib3.PoolManager.request

        def recording_request(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            response = original(pool, method, url, *args, **kwargs)
            if kwargs.get("preload_content") is not False:
                self.answers.append((method, url, response.status, response.data))
                return response
            # A caller that reads the answer itself gets it whole, as if untouched.
            body = response.read()
            response.release_conn()
            self.answers.append((method, url, response.status, body))
            return urllib3.HTTPResponse(
                body=io.BytesIO(body),
                headers=urllib3.HTTPHeaderDict(
                    {k: v for k, v in response.headers.items() if k.lower() != "content-encoding"}
                ),
                status=response.status,
                reason=response.reason,
                preload_content=False,
                decode_content=False,
                request_method=method,
                request_url=url,
            )

        monkeypatch.setattr(urllib3.PoolManager, "request", recording_request)


def signed_snaptrade_request(
    handle: EmulatorHandle,
    method: str,
    path: str,
    *,
    body: Any = None,
    signed_path: str | None = None,
    signed_body: Any = None,
    user: bool = True,
    signature_header: str = "Signature",
) -> requests.Response:
    """One SnapTrade request signed like the SDK does, without the SDK's urllib3 retries.

    (The SDK's urllib3 pool retries a 429 or 503 that carries Retry-After, sleeping
    that long, up to three times: a test that wants the raw answer goes around it.)
    """
    params: dict[str, Any] = {}
    if user:
        params |= {"userId": demo.SNAPTRADE_USER_ID, "userSecret": demo.SNAPTRADE_USER_SECRET}
    params |= {"clientId": demo.SNAPTRADE_CLIENT_ID, "timestamp": int(time.time())}
    query = urlencode(params)
    signature = request_signature(
        demo.SNAPTRADE_CONSUMER_KEY,
        signed_path or path,
        query,
        body if signed_body is None else signed_body,
    )
    return requests.request(
        method,
        f"{handle.snaptrade_url}{path}?{query}",
        json=body,
        headers={signature_header: signature},
        timeout=5,
    )


# --- SnapTrade: its OpenAPI spec ------------------------------------------------------


class _YamlWithoutTimestamps(yaml.SafeLoader):
    """Keeps date-like scalars as strings, as JSON would."""


_YamlWithoutTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        spec = yaml.load(f, Loader=_YamlWithoutTimestamps)
    return _allow_null_compositions(spec)


def _allow_null_compositions(node: Any) -> Any:
    """Let ``{"nullable": true, "allOf": [{"$ref": ...}]}`` accept null.

    The spec marks a referenced object nullable that way. Under the strict
    OpenAPI 3.0.3 reading ``nullable`` has no effect without ``type``, so null
    would fail the referenced schema, although SnapTrade does send null there
    and its SDK accepts it. Rewrite it as "null, or the composition".
    """
    if isinstance(node, list):
        return [_allow_null_compositions(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _allow_null_compositions(value) for key, value in node.items()}
    composed = any(key in node for key in ("allOf", "oneOf", "anyOf", "$ref"))
    if node.get("nullable") is True and composed and "type" not in node:
        rest = {key: value for key, value in node.items() if key != "nullable"}
        return {"anyOf": [{"enum": [None]}, rest]}
    return node


def _is_decimal_string(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    try:
        Decimal(instance)
    except InvalidOperation:
        return False
    return True


def is_public_web_url(instance: object) -> bool:
    """The ``url`` format as Stoplight Prism checks it (ajv-formats' ``url`` pattern).

    An http(s) URL whose host is a public address or a dotted name with a letters-only
    top-level domain. Loopback, private, link-local and other non-public addresses fail,
    and so do ``localhost`` and one-label names: a URL only the emulator's machine can
    open is not one a client of the real service would ever receive.
    """
    if not isinstance(instance, str):
        return True
    if any(character.isspace() for character in instance):
        return False
    try:
        parts = urlsplit(instance)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    host = parts.hostname  # lower-cased, IPv6 brackets removed
    if parts.scheme not in ("http", "https") or not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        top = labels[-1]
        return (
            len(labels) >= 2
            and all(labels)
            and top.isalpha()
            and len(top) >= 2
            and top != "localhost"  # RFC 6761: *.localhost is loopback too
        )
    return address.is_global and not address.is_multicast


def spec_format_checker() -> FormatChecker:
    """OpenAPI 3.0's string formats plus the two the SnapTrade spec adds, ``decimal`` and ``url``.

    jsonschema lets a string through when it does not know its format, so each format
    the spec names must be known here; a test checks that none is left out.
    """
    # A private copy: the validators' own checker is shared by every user in the process.
    checker = FormatChecker(formats=())
    checker.checkers = dict(OAS30ReadValidator.FORMAT_CHECKER.checkers)
    checker.checks("decimal")(_is_decimal_string)
    checker.checks("url")(is_public_web_url)
    return checker


# The error body SnapTrade documents for real errors. The spec describes some error
# answers otherwise ({"default_detail", "default_code"}) and many not at all.
SNAPTRADE_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "status_code", "code"],
    "properties": {
        "detail": {"type": "string"},
        "status_code": {"type": "integer"},
        "code": {"type": "string"},
    },
}


class SpecValidator:
    """Validates answers against an OpenAPI 3.0 spec's response schemas, formats included."""

    def __init__(self, spec_path: Path) -> None:
        self.spec = load_spec(spec_path)
        self.format_checker = spec_format_checker()

    def template_of(self, method: str, path: str) -> str:
        """The spec's path template (``/accounts/{accountId}``) that a concrete path matches."""
        for template, operations in self.spec["paths"].items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            if method.lower() in operations and re.fullmatch(pattern, path):
                return template
        raise KeyError(f"the spec has no {method.upper()} {path}")

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any]:
        responses = self.spec["paths"][path][method.lower()]["responses"]
        response = responses.get(str(status)) or responses["default"]
        if "content" not in response and status >= 400:
            # The spec leaves this error undescribed (a bare "default"): hold it to the
            # shape SnapTrade documents for real errors instead of letting anything pass.
            return SNAPTRADE_ERROR_SCHEMA
        return response["content"]["application/json"]["schema"]

    def validate(self, method: str, path: str, status: int, instance: Any) -> None:
        """Raise jsonschema.ValidationError when ``instance`` does not fit the schema."""
        # $refs point at "#/components/...": give the schema the spec's components.
        schema = {
            "allOf": [self.schema_for(method, path, status)],
            "components": self.spec["components"],
        }
        validator = OAS30ReadValidator(schema, format_checker=self.format_checker)
        validator.validate(instance)


def snaptrade_spec() -> SpecValidator:
    return SpecValidator(SNAPTRADE_SPEC)


# --- Plaid: the plaid-python SDK's generated models -----------------------------------


class PlaidModels:
    """Plaid's contract as stated by the plaid-python SDK's generated models.

    The SDK (MIT) is generated from Plaid's OpenAPI spec, so its models carry the
    spec's facts: required fields, types, nullability, enum values, lengths and
    patterns. Each operation's request and response model is read from the SDK's
    own endpoint table, so the pairing of path and model is the SDK's, not ours.
    """

    def __init__(self) -> None:
        # A configuration is what lets the SDK turn strings into dates and dicts into models;
        # unknown keys are kept (discarding them would hide a misspelt field).
        self._configuration = plaid.Configuration(discard_unknown_keys=False)
        api = plaid_api.PlaidApi(plaid.ApiClient(self._configuration))
        self._operations: dict[str, tuple[tuple[type, ...] | None, tuple[type, ...]]] = {}
        for name, endpoint in vars(api).items():
            if not name.endswith("_endpoint"):
                continue
            body = [param for param, where in endpoint.location_map.items() if where == "body"]
            request_types = endpoint.openapi_types[body[0]] if body else None
            path = endpoint.settings["endpoint_path"]
            self._operations[path] = (request_types, endpoint.settings["response_type"])

    def answer_problems(self, path: str, status: int, answer: Any) -> list[str]:
        """Every way ``answer`` (JSON) breaks the SDK's response model for ``path``.

        A 200 answer must parse as the operation's response model, any other as
        Plaid's error object.
        """
        response_types = self._operations[path][1] if status == 200 else (PlaidError,)
        return self._problems(response_types, answer, "answer")

    def request_problems(self, path: str, body: Any) -> list[str]:
        """Every way ``body`` (JSON) breaks the SDK's request model for ``path``."""
        request_types = self._operations[path][0]
        if request_types is None:
            return [] if body in (None, {}) else ["a body was sent to an operation that takes none"]
        return self._problems(request_types, body, "body")

    def _problems(self, types: tuple[type, ...], data: Any, where: str) -> list[str]:
        # The strict parse the SDK itself runs on an answer (ApiClient.deserialize with
        # _check_return_type=True): every value's type checked, dates and datetimes
        # parsed, dicts built into models, whose constructors demand the required
        # fields. It converts in place, so it gets a copy.
        try:
            parsed = validate_and_convert_types(
                copy.deepcopy(data), types, [where], True, True, configuration=self._configuration
            )
        except OpenApiException as error:  # a wrong type, a bad value, an unknown attribute
            return [str(error)]
        except TypeError as error:  # a required field is missing: the model's constructor says
            return [f"{where}: {error}"]
        # A composed model and its parts may both name one bad enum value: say it once.
        return list(dict.fromkeys(_beyond_the_parse(parsed, where)))


def _beyond_the_parse(value: Any, where: str) -> Iterator[str]:
    """What the SDK's parse lets through on purpose: enum values and fields it does not know.

    The SDK must not break when Plaid adds an enum value or a field, so it accepts
    both. The emulator speaks for this SDK's version of the API, so for the emulator
    either one is a mistake (a misspelt field or value would otherwise pass).
    """
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _beyond_the_parse(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _beyond_the_parse(item, f"{where}.{key}")
    elif isinstance(value, OpenApiModel):
        yield from _model_problems(value, where, recurse=True)


def _model_problems(model: OpenApiModel, where: str, *, recurse: bool) -> Iterator[str]:
    parts = model._composed_instances if isinstance(model, ModelComposed) else []
    declared = set(model.openapi_types).union(*(part.openapi_types for part in parts))
    for name, item in model._data_store.items():
        at = where if isinstance(model, ModelSimple) else f"{where}.{name}"
        if name not in declared:
            # A composed model's parts each hold every field of the whole: only the
            # whole (recurse=True) may call a field undeclared.
            if recurse:
                yield f"{at}: {type(model).__name__} declares no such field"
            continue
        allowed = model.allowed_values.get((name,))
        if allowed is not None:
            values = item if isinstance(item, list) else [item]
            for unknown in [v for v in values if v is not None and v not in allowed.values()]:
                yield f"{at}: {unknown!r} is not one of {sorted(allowed.values())}"
        if recurse:
            yield from _beyond_the_parse(item, at)
    # Enums declared inline in an allOf/oneOf part are only known to that part.
    for part in parts:
        yield from _model_problems(part, where, recurse=False)
