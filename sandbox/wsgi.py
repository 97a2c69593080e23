"""The emulator's WSGI application: one URL map for both providers and the admin
switches, and the path of every API call through counters, holds, latency and
faults to the provider's handler.

    /plaid/...       Plaid API (POST JSON)
    /snaptrade/...   SnapTrade API (signed requests)
    /_emulator/...   health, faults, latency, holds, counters, switches
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.admin import admin_rules, serve_admin
from sandbox.faults.controls import Controls
from sandbox.faults.rules import HUGE_ANSWER_BYTES, NESTED_DEPTH, FaultRule
from sandbox.plaid.api import PlaidApi
from sandbox.routing import ApiRequest, ApiResponse, Page, Route, endpoint_key
from sandbox.snaptrade.api import SnapTradeApi
from sandbox.state import StateStore

Api = PlaidApi | SnapTradeApi
WsgiEnviron = dict[str, Any]
StartResponse = Callable[..., Any]


class EmulatorApp:
    """The WSGI application."""

    def __init__(
        self, store: StateStore, clock: Callable[[], float], *, allow_admin: bool = True
    ) -> None:
        self.clock = clock
        self.allow_admin = allow_admin  # False: every /_emulator/ switch but health is a 403
        self.plaid = PlaidApi(store)
        self.snaptrade = SnapTradeApi(store)
        self.controls = Controls(self.plaid, self.snaptrade, store, clock)
        self._api_routes: dict[str, tuple[Api, Route]] = {}
        self._pages: dict[str, tuple[Api, Page]] = {}
        rules = []
        for api in (self.plaid, self.snaptrade):
            for route in api.routes:
                key = endpoint_key(api.provider, route.template)
                self._api_routes[key] = (api, route)
                rules.append(
                    Rule(route.werkzeug_rule(api.prefix), endpoint=key, methods=[route.method])
                )
            for page in api.pages:
                key = "page " + endpoint_key(api.provider, page.template)
                self._pages[key] = (api, page)
                rules.append(
                    Rule(page.werkzeug_rule(api.prefix), endpoint=key, methods=list(page.methods))
                )
        rules.extend(admin_rules())
        self._url_map = Map(rules)

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            key, params = self._url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            return exc(environ, start_response)
        if key in self._api_routes:
            api, route = self._api_routes[key]
            response = self._serve_api(
                api, route, key, self._api_request(request, key, api, params)
            )
            response = self.controls.hostile.rewritten(api.provider, route.template, response)
        elif key in self._pages:
            api, page = self._pages[key]
            response = page.handler(self._api_request(request, key, api, params))
        else:
            response = serve_admin(
                self.controls, key, request, params, allow_admin=self.allow_admin
            )
        wsgi_response = Response(
            response.payload(),
            status=response.status,
            headers=response.headers,
            content_type=response.content_type,
        )
        return wsgi_response(environ, start_response)

    def _serve_api(self, api: Api, route: Route, key: str, request: ApiRequest) -> ApiResponse:
        subject = api.subject_of(request)
        delay = self.controls.latency_for(key)
        self.controls.record_call(key, subject)  # every call counts, faulted or held or not
        self.controls.record_request(
            key,
            request.method,
            path_params=request.path_params,
            query={name: request.args.getlist(name) for name in request.args},
            body=request.body,
            body_is_json=request.body_is_json,
            latency=delay,
        )
        self.controls.park_if_held(key)  # returns at once unless a test holds this endpoint
        if delay:
            time.sleep(delay)
        fault = self.controls.take_fault(key, subject)
        if fault is not None:
            return self._faulted(api, route, fault, request)
        return api.authenticate(request) or route.handler(request)

    def _faulted(
        self, api: Api, route: Route, fault: FaultRule, request: ApiRequest
    ) -> ApiResponse:
        if fault.fault == "drop":
            raise DropConnectionError
        if fault.fault not in ("malformed", "missing_field", "nested", "huge"):
            return api.fault_response(fault.fault, request, fault.retry_after)
        answer = api.authenticate(request) or route.handler(request)
        if answer.status != 200:
            return answer
        if fault.fault == "malformed":
            # A cut-off answer, as from a proxy that gave up half way.
            payload = answer.payload()
            return ApiResponse(200, raw=payload[: max(1, len(payload) // 2)])
        if fault.fault in ("nested", "huge"):
            return ApiResponse(200, raw=_with_extra_value(answer.payload(), fault.fault))
        return ApiResponse(200, _without_field(answer.body, route.required_field), answer.headers)

    def _api_request(
        self, request: Request, key: str, api: Api, params: Mapping[str, str]
    ) -> ApiRequest:
        environ = request.environ
        # SnapTrade signs the path as the client sent it, below the host's own path.
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(request.path)
        raw_path = raw_uri.split("?", 1)[0]
        path = raw_path[len(api.prefix) :] if raw_path.startswith(api.prefix) else raw_path
        data = request.get_data(cache=True)
        body: Any = None
        body_is_json = True
        if data and request.mimetype != "application/x-www-form-urlencoded":
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):  # 60,000 "[" is no more JSON than "x"
                body, body_is_json = data.decode("utf-8", "replace"), False
        return ApiRequest(
            method=request.method,
            endpoint=key,
            path=path,
            path_params=dict(params),
            raw_query=environ.get("QUERY_STRING", ""),
            args=request.args,
            headers=request.headers,
            body=body,
            body_is_json=body_is_json,
            base_url=request.host_url.rstrip("/"),
            now=self.clock(),
            form=request.form,
        )


def _with_extra_value(payload: bytes, fault: str) -> bytes:
    """The answer, still valid JSON, with one more value: deeply nested, or very long."""
    if fault == "nested":
        extra = b"[" * NESTED_DEPTH + b"]" * NESTED_DEPTH
    else:
        extra = b'"' + b"x" * max(0, HUGE_ANSWER_BYTES - len(payload)) + b'"'
    if payload.startswith(b"{"):
        rest = payload[1:].lstrip()
        return b'{"extra":' + extra + (b"," if rest != b"}" else b"") + rest
    if payload.startswith(b"["):
        rest = payload[1:].lstrip()
        return b"[" + extra + (b"," if rest != b"]" else b"") + rest
    return payload


def _without_field(body: Any, field: str) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != field}
    if isinstance(body, list):
        return [_without_field(element, field) for element in body]
    return body


class DropConnectionError(Exception):
    """The "drop" fault: close the socket without answering, like a server that died."""


class DropAwareApp:
    """Turns :class:`DropConnectionError` into a closed socket with no HTTP response."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self.app(environ, start_response)
        except DropConnectionError:
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            # werkzeug treats ConnectionError as "client went away": nothing is written.
            raise ConnectionAbortedError("emulator fault: drop") from None
