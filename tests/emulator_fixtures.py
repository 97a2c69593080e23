"""Helpers for the emulator tests: real SDK clients, a movable clock, spec validation.

Imported explicitly by tests/test_emulator_*.py (this is not a conftest).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlencode

import plaid
import pytest
import requests
import yaml
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30ReadValidator
from plaid.api import plaid_api
from snaptrade_client import SnapTrade, SnapTradeAuth

from sandbox import demo
from sandbox.server import EmulatorHandle
from sandbox.snaptrade_api import request_signature

# The repo sits beside shared/, which holds the providers' official specs.
SPECS_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"
PLAID_SPEC = SPECS_DIR / "plaid-2020-09-14.patched.json"
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


def require_specs() -> Path:
    """The specs folder; skip the test when it is absent, except in CI where that fails."""
    if SPECS_DIR.is_dir():
        return SPECS_DIR
    reason = f"provider specs not found at {SPECS_DIR} (the repo must sit beside shared/)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class _YamlWithoutTimestamps(yaml.SafeLoader):
    """Keeps date-like scalars as strings, as JSON would."""


_YamlWithoutTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def _load_spec(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        if path.suffix == ".json":
            spec = json.load(f)
        else:
            spec = yaml.load(f, Loader=_YamlWithoutTimestamps)
    return _allow_null_compositions(spec)


def _allow_null_compositions(node: Any) -> Any:
    """Let ``{"nullable": true, "allOf": [{"$ref": ...}]}`` accept null.

    Both specs mark a referenced object nullable that way. Under the strict
    OpenAPI 3.0.3 reading ``nullable`` has no effect without ``type``, so null
    would fail the referenced schema, although the providers do send null there
    and their SDKs accept it. Rewrite it as "null, or the composition".
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


class SpecValidator:
    """Validates answers against an OpenAPI 3.0 spec's response schemas."""

    def __init__(self, spec_path: Path) -> None:
        self.spec = _load_spec(spec_path)
        # A private copy: the validator's own checker is shared by every user in the process.
        format_checker = FormatChecker(formats=())
        format_checker.checkers = dict(OAS30ReadValidator.FORMAT_CHECKER.checkers)
        format_checker.checks("decimal")(_is_decimal_string)  # SnapTrade's decimal strings
        self._format_checker = format_checker

    def schema_for(self, method: str, path: str, status: int | str) -> dict[str, Any]:
        responses = self.spec["paths"][path][method.lower()]["responses"]
        response = responses.get(str(status)) or responses["default"]
        return response["content"]["application/json"]["schema"]

    def validate(self, method: str, path: str, status: int | str, instance: Any) -> None:
        """Raise jsonschema.ValidationError when ``instance`` does not fit the schema."""
        # $refs point at "#/components/...": give the schema the spec's components.
        schema = {
            "allOf": [self.schema_for(method, path, status)],
            "components": self.spec["components"],
        }
        validator = OAS30ReadValidator(schema, format_checker=self._format_checker)
        validator.validate(instance)


def plaid_spec() -> SpecValidator:
    require_specs()
    return SpecValidator(PLAID_SPEC)


def snaptrade_spec() -> SpecValidator:
    require_specs()
    return SpecValidator(SNAPTRADE_SPEC)
