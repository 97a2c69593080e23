"""One WSGI server for both emulated providers, plus its admin switches.

    http://127.0.0.1:PORT/plaid/...       Plaid API (POST JSON)
    http://127.0.0.1:PORT/snaptrade/...   SnapTrade API (signed requests)
    http://127.0.0.1:PORT/_emulator/...   health, faults, latency, counters, switches

Public API: :class:`EmulatorHandle`, :func:`start_emulator`, :func:`ensure_emulator`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from sandbox.faults import Controls, FaultRule
from sandbox.plaid_api import PlaidApi
from sandbox.routing import ApiRequest, ApiResponse, Page, Route, endpoint_key
from sandbox.snaptrade_api import SnapTradeApi
from sandbox.state import StateStore

SERVICE_NAME = "brokerage-hub-provider-emulator"
HOST = "127.0.0.1"  # loopback only: the emulator has no real security
POINTER_FILE = "emulator.json"
STATE_FILE = "emulator-state.json"

Api = PlaidApi | SnapTradeApi
WsgiEnviron = dict[str, Any]
StartResponse = Callable[..., Any]


class EmulatorHandle:
    """Where a running emulator answers, and how to steer and stop it."""

    def __init__(
        self,
        base_url: str,
        controls: Controls | None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        self.base_url = base_url
        self.plaid_url = base_url + "/plaid"
        self.snaptrade_url = base_url + "/snaptrade"
        # None when the emulator runs in another process: use its /_emulator/ HTTP switches.
        self.controls = controls
        self._stop = stop

    def stop(self) -> None:
        """Stop the server if this handle started it (a reused one is left running)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle({self.base_url!r}, in_process={self.controls is not None})"


class EmulatorApp:
    """The WSGI application."""

    def __init__(self, store: StateStore, clock: Callable[[], float]) -> None:
        self.clock = clock
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
        rules.extend(_admin_rules())
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
        elif key in self._pages:
            api, page = self._pages[key]
            response = page.handler(self._api_request(request, key, api, params))
        else:
            response = self._serve_admin(key, request, params)
        wsgi_response = Response(
            response.payload(),
            status=response.status,
            headers=response.headers,
            content_type=response.content_type,
        )
        return wsgi_response(environ, start_response)

    # --- provider API calls -----------------------------------------------------------

    def _serve_api(self, api: Api, route: Route, key: str, request: ApiRequest) -> ApiResponse:
        subject = api.subject_of(request)
        self.controls.record_call(key, subject)  # every call counts, faulted or not
        self.controls.record_request(
            key,
            request.method,
            path_params=request.path_params,
            query={name: request.args.getlist(name) for name in request.args},
            body=request.body,
            body_is_json=request.body_is_json,
        )
        delay = self.controls.latency_for(key)
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
            raise _DropConnectionError
        if fault.fault not in ("malformed", "missing_field"):
            return api.fault_response(fault.fault, request, fault.retry_after)
        answer = api.authenticate(request) or route.handler(request)
        if answer.status != 200:
            return answer
        if fault.fault == "malformed":
            # A cut-off answer, as from a proxy that gave up half way.
            payload = answer.payload()
            return ApiResponse(200, raw=payload[: max(1, len(payload) // 2)])
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
            except ValueError:
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

    # --- admin switches ---------------------------------------------------------------

    def _serve_admin(self, key: str, request: Request, params: Mapping[str, str]) -> ApiResponse:
        body = request.get_json(silent=True) or {}
        if not isinstance(body, dict):
            return ApiResponse(400, {"error": "expected a JSON object"})
        controls = self.controls
        try:
            if key == "admin health":
                base = request.host_url.rstrip("/")
                return ApiResponse(
                    200,
                    {
                        "status": "ok",
                        "service": SERVICE_NAME,
                        "pid": os.getpid(),
                        "plaid": base + "/plaid",
                        "snaptrade": base + "/snaptrade",
                    },
                )
            if key == "admin calls":
                count = controls.calls(request.args.get("endpoint"), request.args.get("subject"))
                return ApiResponse(200, {"calls": count})
            if key == "admin latency":
                controls.set_latency(body["endpoint"], float(body["seconds"]))
            elif key == "admin fail":
                controls.fail(
                    body["endpoint"],
                    body["fault"],
                    times=body.get("times"),
                    retry_after=body.get("retry_after"),
                    subject=body.get("subject"),
                )
            elif key == "admin clear":
                controls.clear()
            elif key == "admin reset":
                controls.reset_counts()
            elif key == "admin reset state":
                controls.reset_state()
            elif key == "admin disable":
                controls.disable_connection(
                    params["authorizationId"], bool(body.get("disabled", True))
                )
            elif key == "admin trading":
                controls.set_trading_permission(params["authorizationId"], bool(body["allowed"]))
            elif key == "admin complete link":
                token = controls.complete_link(params["linkToken"], body["institution"])
                return ApiResponse(200, {"public_token": token})
            elif key == "admin complete portal":
                auth_id = controls.complete_connection(params["sessionId"], body["brokerage"])
                return ApiResponse(200, {"authorization_id": auth_id})
        except (KeyError, TypeError, ValueError) as exc:
            return ApiResponse(400, {"error": f"{type(exc).__name__}: {exc}"})
        return ApiResponse(200, {"ok": True})


def _admin_rules() -> list[Rule]:
    base = "/_emulator"
    return [
        Rule(f"{base}/health", endpoint="admin health", methods=["GET"]),
        Rule(f"{base}/calls", endpoint="admin calls", methods=["GET"]),
        Rule(f"{base}/latency", endpoint="admin latency", methods=["POST"]),
        Rule(f"{base}/fail", endpoint="admin fail", methods=["POST"]),
        Rule(f"{base}/clear", endpoint="admin clear", methods=["POST"]),
        Rule(f"{base}/reset", endpoint="admin reset", methods=["POST"]),
        Rule(f"{base}/state/reset", endpoint="admin reset state", methods=["POST"]),
        Rule(
            f"{base}/connections/<authorizationId>/disable",
            endpoint="admin disable",
            methods=["POST"],
        ),
        Rule(
            f"{base}/connections/<authorizationId>/trading",
            endpoint="admin trading",
            methods=["POST"],
        ),
        Rule(f"{base}/link/<linkToken>/complete", endpoint="admin complete link", methods=["POST"]),
        Rule(
            f"{base}/portal/<sessionId>/complete",
            endpoint="admin complete portal",
            methods=["POST"],
        ),
    ]


def _without_field(body: Any, field: str) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != field}
    if isinstance(body, list):
        return [_without_field(element, field) for element in body]
    return body


class _DropConnectionError(Exception):
    """The "drop" fault: close the socket without answering, like a server that died."""


class _DropAwareApp:
    """Turns :class:`_DropConnectionError` into a closed socket with no HTTP response."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self.app(environ, start_response)
        except _DropConnectionError:
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            # werkzeug treats ConnectionError as "client went away": nothing is written.
            raise ConnectionAbortedError("emulator fault: drop") from None


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log: the emulator runs inside the app and the MCP server (stdout is MCP's)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def start_emulator(
    port: int = 0,
    state_path: str | os.PathLike[str] | None = None,
    clock: Callable[[], float] | None = None,
) -> EmulatorHandle:
    """Serve the emulator on 127.0.0.1:``port`` (0 = a free port) from a daemon thread.

    ``state_path`` is the JSON file shared with other emulator processes (None:
    memory only); ``clock`` (unix seconds) drives SnapTrade timestamp checks and
    trade-id expiry, so tests can move time.
    """
    base_url, controls, stop = _serve(port, state_path, clock or time.time)
    return EmulatorHandle(base_url, controls, stop)


def ensure_emulator(instance_dir: str | os.PathLike[str]) -> EmulatorHandle:
    """Reuse the emulator named in ``instance_dir/emulator.json`` or start one here.

    The web app and the MCP server both call this: whichever starts first serves
    the other. A started emulator keeps its state in ``emulator-state.json`` so
    a later one (after the first process exits) carries on with the same data.
    """
    instance = Path(instance_dir)
    instance.mkdir(parents=True, exist_ok=True)
    pointer = instance / POINTER_FILE
    lock = instance / (POINTER_FILE + ".lock")
    with _exclusive_lock(lock):
        url = _pointer_url(pointer)
        if url is not None and _answers_health(url):
            return EmulatorHandle(url, controls=None)
        base_url, controls, stop_server = _serve(0, instance / STATE_FILE, time.time)
        _write_json_atomically(pointer, {"url": base_url, "pid": os.getpid()})

    def stop() -> None:
        stop_server()
        with _exclusive_lock(lock):
            if _pointer_url(pointer) == base_url:
                pointer.unlink(missing_ok=True)

    return EmulatorHandle(base_url, controls, stop)


def _serve(
    port: int, state_path: str | os.PathLike[str] | None, clock: Callable[[], float]
) -> tuple[str, Controls, Callable[[], None]]:
    app = EmulatorApp(StateStore(state_path), clock)
    server = make_server(
        HOST, port, _DropAwareApp(app), threaded=True, request_handler=_QuietRequestHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},  # how fast stop() returns (every test stops one)
        name=f"provider-emulator:{server.server_port}",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://{HOST}:{server.server_port}", app.controls, stop


def _pointer_url(pointer: Path) -> str | None:
    try:
        url = json.loads(pointer.read_text(encoding="utf-8")).get("url")
    except (OSError, ValueError, AttributeError):
        return None
    # Only ever follow a loopback http URL, whatever the file says.
    if isinstance(url, str) and url.startswith(f"http://{HOST}:"):
        return url
    return None


def _answers_health(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_emulator/health", timeout=1) as answer:  # noqa: S310 (loopback http URL checked above)
            return json.load(answer).get("service") == SERVICE_NAME
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
