"""Plaid's webhooks: the payloads Plaid documents, which Item's URL gets them, and the
operations around them (``/webhook_verification_key/get``, ``/item/webhook/update``,
``/sandbox/item/fire_webhook``).

An Item's webhook URL is the ``webhook`` of the link token that made it (or of
``/sandbox/public_token/create``'s options), or what ``/item/webhook/update`` (or the
``set_plaid_webhook_url`` control) set later; an Item without one gets no webhooks, as
with Plaid. Payload fields follow plaid-python's webhook models (``HoldingsDefaultUpdateWebhook``,
``InvestmentsDefaultUpdateWebhook``, ``ItemErrorWebhook``, ...), so a field a model does
not declare is not sent, and one it requires is. Every payload says
``"environment": "sandbox"``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sandbox.activity import served_activities, today_of
from sandbox.plaid import render
from sandbox.plaid.common import (
    PLAID_FAULTS,
    PlaidAnswerError,
    PlaidErrorSpec,
    invalid_input,
    invalid_request,
    plaid_error,
    request_id,
    required_fields,
)
from sandbox.plaid.records import item_for_token
from sandbox.routing import ApiRequest, ApiResponse, iso_timestamp
from sandbox.state import StateStore
from sandbox.webhooks.outbox import is_webhook_url, outbox_for
from sandbox.webhooks.signing import PlaidKeyRing

ENVIRONMENT = "sandbox"
# Plaid warns of an expiring consent or a coming disconnection 7 days ahead.
NOTICE = timedelta(days=7)
ITEM_CODES = frozenset(
    {
        "ERROR",
        "LOGIN_REPAIRED",
        "PENDING_EXPIRATION",
        "PENDING_DISCONNECT",
        "USER_PERMISSION_REVOKED",
    }
)
PRODUCT_CODES = {
    "HOLDINGS": frozenset({"DEFAULT_UPDATE"}),
    "INVESTMENTS_TRANSACTIONS": frozenset({"DEFAULT_UPDATE", "HISTORICAL_UPDATE"}),
}
# WebhookType values the SDK knows whose products the emulated Items do not have.
OTHER_PRODUCTS = frozenset({"AUTH", "ASSETS", "IDENTITY", "LIABILITIES", "TRANSACTIONS"})
PERMISSION_REVOKED = PlaidErrorSpec(
    400,
    "ITEM_ERROR",
    "USER_PERMISSION_REVOKED",
    "the holder of this account has revoked their permission for your application to access it",
)


def error_object(spec: PlaidErrorSpec) -> dict[str, Any]:
    """Plaid's error object as a webhook carries it (no request_id: no request made it)."""
    return {k: v for k, v in plaid_error(spec).body.items() if k != "request_id"}


class PlaidWebhooks:
    """Builds Plaid's webhook payloads and queues them for the Items' URLs."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.keys = PlaidKeyRing(store)
        self.outbox = outbox_for(store)

    def send(self, url: str | None, payload: dict[str, Any], now: float) -> bool:
        """Queue ``payload`` for ``url`` (nothing without a URL); signed when it is sent."""
        if not url:
            return False

        def signed(faults: frozenset[str]) -> tuple[dict[str, str], bytes]:
            return self.keys.sign(payload, now, faults)

        self.outbox.post("plaid", url, now, signed)
        return True

    def item_event(
        self, item: dict[str, Any], webhook_type: str, webhook_code: str, now: float, **fields: Any
    ) -> bool:
        payload = {
            "webhook_type": webhook_type,
            "webhook_code": webhook_code,
            "item_id": item["item_id"],
            **fields,
            "environment": ENVIRONMENT,
        }
        return self.send(item.get("webhook"), payload, now)

    def _items_holding(self, account_key: str) -> list[dict[str, Any]]:
        items = self.store.read()["plaid"]["items"].values()
        return [i for i in items if not i["removed"] and account_key in i["account_ids"]]

    def holdings_changed(self, account_key: str, now: float) -> None:
        """HOLDINGS DEFAULT_UPDATE to every live Item holding the account (one holding changed)."""
        for item in self._items_holding(account_key):
            self.item_event(
                item,
                "HOLDINGS",
                "DEFAULT_UPDATE",
                now,
                error=None,
                new_holdings=0,
                updated_holdings=1,
            )

    def transactions_changed(
        self, account_key: str, now: float, *, new: int, cancelled: int
    ) -> None:
        """INVESTMENTS_TRANSACTIONS DEFAULT_UPDATE to every live Item holding the account."""
        for item in self._items_holding(account_key):
            self.item_event(
                item,
                "INVESTMENTS_TRANSACTIONS",
                "DEFAULT_UPDATE",
                now,
                error=None,
                new_investments_transactions=new,
                cancelled_investments_transactions=cancelled,
            )

    def link_session_finished(
        self,
        url: str | None,
        link_token: str,
        session_id: str,
        public_tokens: list[str],
        now: float,
    ) -> None:
        """LINK SESSION_FINISHED to the link token's webhook (a Hosted Link session ended)."""
        payload = {
            "webhook_type": "LINK",
            "webhook_code": "SESSION_FINISHED",
            "status": "SUCCESS",
            "link_session_id": session_id,
            "link_token": link_token,
            "public_tokens": public_tokens,
            "environment": ENVIRONMENT,
        }
        self.send(url, payload, now)

    def fire(self, item: dict[str, Any], webhook_type: str | None, code: str, now: float) -> bool:
        """What ``/sandbox/item/fire_webhook`` sends; PlaidAnswerError when it cannot."""
        kind = _webhook_type(webhook_type, code)
        if not item.get("webhook"):
            raise PlaidAnswerError(
                plaid_error(
                    PlaidErrorSpec(
                        400,
                        "SANDBOX_ERROR",
                        "SANDBOX_WEBHOOK_INVALID",
                        "Webhook for this item is empty or has an invalid format.",
                    )
                )
            )
        return self.item_event(item, kind, code, now, **self._fields(item, kind, code, now))

    # --- for the controls: plain KeyError / ValueError, which the admin switches answer 400 ---

    def set_item_urls(self, url: str | None, access_token: str | None = None) -> int:
        """Point one live Item (or every one) at ``url``, silently; returns how many."""
        if url is not None and not is_webhook_url(url):
            raise ValueError(f"a webhook URL is an http or https URL (or None), not {url!r}")
        with self.store.transaction() as state:
            items = [
                item
                for item in state["plaid"]["items"].values()
                if not item["removed"] and access_token in (None, item["access_token"])
            ]
            if not items:
                raise KeyError("no live Plaid Item has that access token")
            for item in items:
                item["webhook"] = url
        return len(items)

    def fire_for_token(
        self, access_token: str, webhook_code: str, webhook_type: str | None, now: float
    ) -> None:
        """``/sandbox/item/fire_webhook`` without the SDK (which refuses some codes)."""
        try:
            self.fire(
                item_for_token(self.store.read(), access_token), webhook_type, webhook_code, now
            )
        except PlaidAnswerError as failure:
            body = failure.response.body
            raise ValueError(f"{body['error_code']}: {body['error_message']}") from None

    def _fields(self, item: dict[str, Any], kind: str, code: str, now: float) -> dict[str, Any]:
        state = self.store.read()
        accounts = [template for template, _ in render.accounts_of(state, item)]
        if kind == "HOLDINGS":
            held = sum(len(a.holdings) + len(a.cash) for a in accounts)
            return {"error": None, "new_holdings": 0, "updated_holdings": held}
        if kind == "INVESTMENTS_TRANSACTIONS":
            if code == "HISTORICAL_UPDATE":
                today = today_of(now)
                new = sum(len(served_activities(state, a.key, today)) for a in accounts)
            else:
                new = 1
            return {
                "error": None,
                "new_investments_transactions": new,
                "cancelled_investments_transactions": 0,
            }
        notice = iso_timestamp(now + NOTICE.total_seconds())
        item_fields: dict[str, dict[str, Any]] = {
            "ERROR": {"error": error_object(PLAID_FAULTS["ITEM_LOGIN_REQUIRED"])},
            "LOGIN_REPAIRED": {},
            "PENDING_EXPIRATION": {"consent_expiration_time": notice},
            "PENDING_DISCONNECT": {
                "reason": "INSTITUTION_TOKEN_EXPIRATION",
                "disconnect_time": notice,
            },
            "USER_PERMISSION_REVOKED": {"error": error_object(PERMISSION_REVOKED)},
        }
        return item_fields[code]


def _webhook_type(webhook_type: str | None, code: str) -> str:
    """The webhook type ``code`` is sent as; PlaidAnswerError for a pair Plaid would refuse."""
    if code in ITEM_CODES:
        # Item webhooks are of type ITEM whichever of the Item's products asked for them.
        if webhook_type in (None, "ITEM", *PRODUCT_CODES):
            return "ITEM"
    elif webhook_type is None and code == "DEFAULT_UPDATE":
        return "HOLDINGS"
    elif webhook_type is None and code == "HISTORICAL_UPDATE":
        return "INVESTMENTS_TRANSACTIONS"
    elif code in PRODUCT_CODES.get(str(webhook_type), ()):
        return str(webhook_type)
    if webhook_type in OTHER_PRODUCTS:
        raise PlaidAnswerError(
            plaid_error(
                PlaidErrorSpec(
                    400,
                    "SANDBOX_ERROR",
                    "SANDBOX_PRODUCT_NOT_ENABLED",
                    f"the Item does not have the {str(webhook_type).lower()} product enabled",
                )
            )
        )
    supported = sorted(ITEM_CODES) + [
        f"{kind} {c}" for kind, codes in PRODUCT_CODES.items() for c in sorted(codes)
    ]
    raise PlaidAnswerError(
        invalid_request(
            "INVALID_FIELD",
            f"webhook_type {webhook_type} with webhook_code {code} is not supported; "
            f"the emulator fires: {', '.join(supported)}",
        )
    )


class WebhookEndpoints:
    """Handlers of the webhook operations over the shared state."""

    def __init__(self, store: StateStore, webhooks: PlaidWebhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    def webhook_verification_key_get(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "key_id")
        key = self.webhooks.keys.public_jwk(str(body["key_id"]))
        if key is None:
            raise PlaidAnswerError(
                invalid_input("INVALID_WEBHOOK_VERIFICATION_KEY_ID", "invalid key_id provided")
            )
        return ApiResponse(200, {"key": key, "request_id": request_id()})

    def item_webhook_update(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token")
        url = body.get("webhook")
        if url is not None and not is_webhook_url(url):
            raise PlaidAnswerError(
                invalid_request("INVALID_FIELD", "webhook must be an http or https URL, or null")
            )
        with self.store.transaction() as state:
            item = item_for_token(state, body["access_token"])
            item["webhook"] = url
        if url:
            self.webhooks.item_event(
                item,
                "ITEM",
                "WEBHOOK_UPDATE_ACKNOWLEDGED",
                request.now,
                new_webhook_url=url,
                error=None,
            )
        return ApiResponse(200, {"item": render.item(item), "request_id": request_id()})

    def sandbox_item_fire_webhook(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "access_token", "webhook_code")
        item = item_for_token(self.store.read(), body["access_token"])
        kind = body.get("webhook_type")
        code = str(body["webhook_code"])
        self.webhooks.fire(item, None if kind is None else str(kind), code, request.now)
        return ApiResponse(200, {"webhook_fired": True, "request_id": request_id()})
