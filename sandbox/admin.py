"""The emulator's HTTP admin switches under ``/_emulator/``: health, faults, latency,
holds, counters, connection switches, holding units, security descriptions, hostile text
(``sandbox.hostile``), activity corrections (amount, id, day, a repeated row) and webhooks,
for a test or process that has no Python handle on the emulator (it runs in another process).

Each switch maps onto a :class:`sandbox.faults.Controls` method. The switches answer
only when the emulator was started for tests (``start_emulator``) or with
``python -m sandbox --allow-admin``: anyone on the machine can reach 127.0.0.1, and
the emulator behind a running demo (``ensure_emulator``, ``make run``) must not be
steerable or readable by another local user. ``/_emulator/health`` always answers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from sandbox.faults.controls import Controls
from sandbox.faults.holds import HOLD_LIMIT_SECONDS
from sandbox.routing import ApiResponse

# What /_emulator/health answers as "service": how a process recognises an emulator.
SERVICE_NAME = "brokerage-hub-provider-emulator"
ADMIN_PREFIX = "/_emulator"
ADMIN_REFUSED = (
    "the emulator's admin switches are off: start it with `python -m sandbox --allow-admin` "
    "(or start_emulator(allow_admin=True)) to use them"
)


def admin_rules() -> list[Rule]:
    """The URL rules of the switches; each endpoint name starts with "admin "."""
    base = ADMIN_PREFIX
    return [
        Rule(f"{base}/health", endpoint="admin health", methods=["GET"]),
        Rule(f"{base}/calls", endpoint="admin calls", methods=["GET"]),
        Rule(f"{base}/latency", endpoint="admin latency", methods=["POST"]),
        Rule(f"{base}/hold", endpoint="admin hold", methods=["POST"]),
        Rule(f"{base}/release", endpoint="admin release", methods=["POST"]),
        Rule(f"{base}/held", endpoint="admin held", methods=["GET"]),
        Rule(f"{base}/held/wait", endpoint="admin held wait", methods=["POST"]),
        Rule(f"{base}/fail", endpoint="admin fail", methods=["POST"]),
        Rule(f"{base}/clear", endpoint="admin clear", methods=["POST"]),
        Rule(f"{base}/reset", endpoint="admin reset", methods=["POST"]),
        Rule(f"{base}/state/reset", endpoint="admin reset state", methods=["POST"]),
        Rule(f"{base}/units", endpoint="admin units", methods=["POST"]),
        Rule(f"{base}/description", endpoint="admin description", methods=["POST"]),
        Rule(f"{base}/hostile", endpoint="admin hostile", methods=["GET", "POST"]),
        Rule(f"{base}/cost-basis", endpoint="admin cost basis", methods=["POST"]),
        Rule(f"{base}/cash", endpoint="admin cash", methods=["POST"]),
        Rule(f"{base}/activity/list", endpoint="admin activity list", methods=["GET"]),
        Rule(f"{base}/activity/correct", endpoint="admin activity correct", methods=["POST"]),
        Rule(f"{base}/activity/remove", endpoint="admin activity remove", methods=["POST"]),
        Rule(f"{base}/activity/repeat", endpoint="admin activity repeat", methods=["POST"]),
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
        *webhook_rules(),
    ]


def webhook_rules() -> list[Rule]:
    """The webhook switches; each endpoint name starts with "admin webhooks "."""
    base = f"{ADMIN_PREFIX}/webhooks"
    return [
        Rule(f"{base}/deliveries", endpoint="admin webhooks deliveries", methods=["GET"]),
        Rule(f"{base}/wait", endpoint="admin webhooks wait", methods=["POST"]),
        Rule(f"{base}/fault", endpoint="admin webhooks fault", methods=["POST"]),
        Rule(f"{base}/snaptrade-url", endpoint="admin webhooks snaptrade url", methods=["POST"]),
        Rule(f"{base}/plaid-url", endpoint="admin webhooks plaid url", methods=["POST"]),
        Rule(f"{base}/plaid-key/rotate", endpoint="admin webhooks rotate", methods=["POST"]),
        Rule(f"{base}/plaid/fire", endpoint="admin webhooks plaid fire", methods=["POST"]),
        Rule(f"{base}/snaptrade/fire", endpoint="admin webhooks snaptrade fire", methods=["POST"]),
    ]


def serve_webhook_switch(
    controls: Controls, key: str, request: Request, body: dict[str, Any]
) -> ApiResponse:
    """Answer a webhook switch (KeyError, TypeError and ValueError are the caller's 400)."""
    if key == "admin webhooks deliveries":
        deliveries = controls.webhook_deliveries(request.args.get("provider"))
        return ApiResponse(200, {"deliveries": [d.to_json() for d in deliveries]})
    if key == "admin webhooks wait":
        count = int(body.get("count", 1))
        # Bounded like the holds' wait: a switch never parks a server thread for long.
        timeout = min(float(body.get("timeout", 10.0)), HOLD_LIMIT_SECONDS)
        try:
            attempted = len(controls.wait_for_webhooks(count, timeout))
        except TimeoutError as exc:
            return ApiResponse(408, {"error": str(exc)})
        return ApiResponse(200, {"deliveries": attempted})
    if key == "admin webhooks fault":
        controls.webhook_fault(
            body["kind"], int(body.get("times", 1)), provider=body.get("provider")
        )
    elif key == "admin webhooks snaptrade url":
        controls.set_snaptrade_webhook_url(body["url"])
    elif key == "admin webhooks plaid url":
        items = controls.set_plaid_webhook_url(body["url"], body.get("access_token"))
        return ApiResponse(200, {"items": items})
    elif key == "admin webhooks rotate":
        return ApiResponse(200, {"kid": controls.rotate_plaid_webhook_key()})
    elif key == "admin webhooks plaid fire":
        controls.fire_plaid_webhook(
            body["access_token"], body["webhook_code"], body.get("webhook_type")
        )
    elif key == "admin webhooks snaptrade fire":
        queued = controls.fire_snaptrade_webhook(
            body["event_type"],
            account_key=body.get("account"),
            connection=body.get("connection"),
            user_id=body.get("user_id"),
            details=body.get("details"),
        )
        return ApiResponse(200, {"queued": queued})
    return ApiResponse(200, {"ok": True})


def _day(value: Any) -> date | None:
    """A YYYY-MM-DD body field as a date (None when absent; ValueError when not a day)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a day is a YYYY-MM-DD string, not {value!r}")
    return date.fromisoformat(value)


def serve_admin(
    controls: Controls,
    key: str,
    request: Request,
    params: Mapping[str, str],
    *,
    allow_admin: bool = True,
) -> ApiResponse:
    """Answer the admin switch ``key`` (a bad or incomplete body is a 400; 403 when off)."""
    if not allow_admin and key != "admin health":
        return ApiResponse(403, {"error": ADMIN_REFUSED})
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        return ApiResponse(400, {"error": "expected a JSON object"})
    try:
        if key.startswith("admin webhooks "):
            return serve_webhook_switch(controls, key, request, body)
        if key == "admin health":
            base = request.host_url.rstrip("/")
            return ApiResponse(
                200,
                {
                    "status": "ok",
                    "service": SERVICE_NAME,
                    "pid": os.getpid(),
                    "admin": allow_admin,
                    "plaid": base + "/plaid",
                    "snaptrade": base + "/snaptrade",
                },
            )
        if key == "admin calls":
            count = controls.calls(request.args.get("endpoint"), request.args.get("subject"))
            return ApiResponse(200, {"calls": count})
        if key == "admin held":
            return ApiResponse(200, {"held": controls.held(request.args.get("endpoint"))})
        if key == "admin held wait":
            try:
                held = controls.wait_until_held(
                    body["endpoint"],
                    int(body.get("count", 1)),
                    min(float(body.get("timeout", 10.0)), HOLD_LIMIT_SECONDS),
                )
            except TimeoutError as exc:
                return ApiResponse(
                    408, {"error": str(exc), "held": controls.held(body["endpoint"])}
                )
            return ApiResponse(200, {"held": held})
        if key == "admin hostile":
            return controls.hostile.serve_switch(request.method, body)
        if key == "admin activity list":
            history = controls.list_activities(request.args["account"])
            return ApiResponse(200, {"activities": [a.to_json() for a in history]})
        if key == "admin release":
            return ApiResponse(200, {"released": controls.release(body.get("endpoint"))})
        if key == "admin hold":
            controls.hold(body["endpoint"])
        elif key == "admin latency":
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
            controls.disable_connection(params["authorizationId"], bool(body.get("disabled", True)))
        elif key == "admin trading":
            controls.set_trading_permission(params["authorizationId"], bool(body["allowed"]))
        elif key == "admin units":
            controls.set_units(body["account"], body["ticker"], body["units"])
            return ApiResponse(200, {"units": controls.units(body["account"], body["ticker"])})
        elif key == "admin description":
            controls.set_description(body["ticker"], body["text"])
        elif key == "admin cost basis":
            controls.set_cost_basis(body["account"], body["ticker"], body["cost_basis"])
        elif key == "admin cash":
            controls.set_cash(body["account"], body["currency"], body["amount"])
        elif key == "admin activity correct":
            controls.correct_activity(
                body["account"],
                body["activity_id"],
                amount=body.get("amount"),
                new_id=body.get("new_id"),
                trade_date=_day(body.get("trade_date")),
            )
        elif key == "admin activity remove":
            controls.remove_activity(body["account"], body["activity_id"])
        elif key == "admin activity repeat":
            controls.repeat_activity(body["account"], body["activity_id"])
        elif key == "admin complete link":
            token = controls.complete_link(params["linkToken"], body["institution"])
            return ApiResponse(200, {"public_token": token})
        elif key == "admin complete portal":
            auth_id = controls.complete_connection(params["sessionId"], body["brokerage"])
            return ApiResponse(200, {"authorization_id": auth_id})
    except (KeyError, TypeError, ValueError) as exc:
        return ApiResponse(400, {"error": f"{type(exc).__name__}: {exc}"})
    return ApiResponse(200, {"ok": True})
