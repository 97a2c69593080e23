"""Plain request/response types shared by the provider modules and the server."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers, MultiDict

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class ApiRequest:
    method: str
    endpoint: str  # endpoint key, e.g. "snaptrade /accounts/{accountId}/balances"
    path: str  # below the provider prefix, still percent-encoded as the client sent it
    path_params: dict[str, str]
    raw_query: str  # exactly as received
    args: MultiDict[str, str]
    headers: Headers  # case-insensitive, as HTTP header names are
    body: Any  # decoded JSON; None when the request had no body
    body_is_json: bool  # False when a body was sent but does not decode as JSON
    base_url: str  # "http://127.0.0.1:PORT", for links the emulator hands out
    now: float  # emulator clock, unix seconds
    form: MultiDict[str, str] = field(default_factory=MultiDict)  # browser pages only

    def json_object(self) -> dict[str, Any]:
        """The body when it is a JSON object, else an empty dict."""
        return self.body if isinstance(self.body, dict) else {}


@dataclass
class ApiResponse:
    status: int
    body: Any = None  # JSON-serialisable; ignored when ``raw`` is set
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent verbatim (HTML pages, the "malformed" fault)
    content_type: str = JSON_CONTENT_TYPE

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, allow_nan=False).encode()


Handler = Callable[[ApiRequest], ApiResponse]


@dataclass(frozen=True)
class Route:
    """One provider API operation."""

    method: str
    template: str  # provider path template, e.g. "/accounts/{accountId}/positions/all"
    handler: Handler
    # Field the "missing_field" fault removes: a required top-level key, or for a
    # list response a key removed from every element.
    required_field: str

    def werkzeug_rule(self, prefix: str) -> str:
        return _werkzeug_rule(prefix, self.template)


@dataclass(frozen=True)
class Page:
    """A browser page (Hosted Link, connection portal): no API auth, not counted."""

    methods: tuple[str, ...]
    template: str
    handler: Handler

    def werkzeug_rule(self, prefix: str) -> str:
        return _werkzeug_rule(prefix, self.template)


def _werkzeug_rule(prefix: str, template: str) -> str:
    """ "/accounts/{accountId}" -> "<prefix>/accounts/<accountId>"."""
    return prefix + re.sub(r"\{(\w+)\}", r"<\1>", template)


def endpoint_key(provider: str, template: str) -> str:
    return f"{provider} {template}"


def retry_after_header(seconds: float) -> str:
    """HTTP's Retry-After is whole seconds (urllib3 rejects "0.5")."""
    return str(max(0, math.ceil(seconds)))


def iso_timestamp(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_page(status: int, title: str, body_html: str) -> ApiResponse:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body_html}</body></html>"
    )
    return ApiResponse(status, raw=document.encode(), content_type="text/html; charset=utf-8")
