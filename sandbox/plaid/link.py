"""Linking a Plaid Item: link tokens, the Hosted Link page a person finishes,
and the public-token exchange that turns a finished link into an access token.

A link token's ``webhook`` becomes the webhook URL of the Item its session makes, and a
finished Hosted Link session sends LINK SESSION_FINISHED there (``sandbox.plaid.webhooks``).
"""

from __future__ import annotations

import html
import uuid
from typing import Any

from sandbox.data import PLAID_INSTITUTIONS
from sandbox.plaid import render
from sandbox.plaid.common import (
    PREFIX,
    PlaidAnswerError,
    invalid_input,
    invalid_request,
    request_id,
    required_fields,
)
from sandbox.plaid.records import institution_by_plaid_id, item_for_token, new_item
from sandbox.plaid.webhooks import PlaidWebhooks
from sandbox.routing import ApiRequest, ApiResponse, html_page, iso_timestamp
from sandbox.state import StateStore

LINK_TOKEN_LIFETIME_SECONDS = 4 * 60 * 60  # Plaid's default link_token lifetime


class LinkEndpoints:
    """Handlers of the link operations and the Hosted Link page over the shared state."""

    def __init__(self, store: StateStore, webhooks: PlaidWebhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    def link_token_create(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "client_name", "language", "country_codes", "user")
        if not (body.get("user") or {}).get("client_user_id"):
            raise PlaidAnswerError(
                invalid_request(
                    "MISSING_FIELDS",
                    "the following required fields are missing: user.client_user_id",
                )
            )
        update_token = body.get("access_token")
        if update_token:
            item_for_token(self.store.read(), update_token)
        link_token = f"link-sandbox-{uuid.uuid4()}"
        hosted_link = body.get("hosted_link")
        record = {
            "created_at": request.now,
            "expires_at": request.now + LINK_TOKEN_LIFETIME_SECONDS,
            "client_name": body["client_name"],
            "language": body["language"],
            "country_codes": body["country_codes"],
            "products": body.get("products") or [],
            "webhook": body.get("webhook"),
            "redirect_uri": body.get("redirect_uri"),
            "update_access_token": update_token,
            "completion_redirect_uri": (hosted_link or {}).get("completion_redirect_uri"),
            "hosted_link": hosted_link is not None,  # only Hosted Link sends SESSION_FINISHED
            "sessions": [],
        }
        with self.store.transaction() as state:
            state["plaid"]["link_tokens"][link_token] = record
        response: dict[str, Any] = {
            "link_token": link_token,
            "expiration": iso_timestamp(record["expires_at"]),
            "request_id": request_id(),
        }
        if hosted_link is not None:
            response["hosted_link_url"] = f"{request.base_url}{PREFIX}/hosted-link/{link_token}"
        return ApiResponse(200, response)

    def link_token_get(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "link_token")
        record = self.store.read()["plaid"]["link_tokens"].get(body["link_token"])
        if record is None:
            raise PlaidAnswerError(
                invalid_input("INVALID_LINK_TOKEN", "invalid link_token provided")
            )
        return ApiResponse(
            200,
            {
                "link_token": body["link_token"],
                "created_at": iso_timestamp(record["created_at"]),
                "expiration": iso_timestamp(record["expires_at"]),
                "link_sessions": record["sessions"],
                "metadata": {
                    "initial_products": record["products"],
                    "webhook": record["webhook"],
                    "country_codes": record["country_codes"],
                    "language": record["language"],
                    "redirect_uri": record["redirect_uri"],
                    "client_name": record["client_name"],
                },
                "request_id": request_id(),
            },
        )

    def item_public_token_exchange(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "public_token")
        with self.store.transaction() as state:
            for item in state["plaid"]["items"].values():
                if item["public_token"] and item["public_token"] == body["public_token"]:
                    # A public token is single-use: it becomes the Item's access token.
                    item["public_token"] = None
                    item["access_token"] = f"access-sandbox-{uuid.uuid4()}"
                    access_token, item_id = item["access_token"], item["item_id"]
                    break
            else:
                raise PlaidAnswerError(
                    invalid_input(
                        "INVALID_PUBLIC_TOKEN", "provided public token is expired or invalid"
                    )
                )
        return ApiResponse(
            200, {"access_token": access_token, "item_id": item_id, "request_id": request_id()}
        )

    def sandbox_public_token_create(self, request: ApiRequest) -> ApiResponse:
        body = required_fields(request, "institution_id", "initial_products")
        institution = institution_by_plaid_id(body["institution_id"])
        webhook = (body.get("options") or {}).get("webhook")
        with self.store.transaction() as state:
            item = new_item(state, institution.slug, request.now, webhook)
        return ApiResponse(200, {"public_token": item["public_token"], "request_id": request_id()})

    # --- Hosted Link -----------------------------------------------------------------

    def complete_link(self, link_token: str, institution_slug: str, now: float) -> str | None:
        """Act as the person finishing Hosted Link; returns the new public token.

        For an update-mode link token (created with an access_token) no new Item
        is made and None is returned, as with Plaid. A Hosted Link token with a
        ``webhook`` then sends LINK SESSION_FINISHED to it (the public tokens made).
        """
        if institution_slug not in PLAID_INSTITUTIONS:
            raise ValueError(f"no Plaid institution {institution_slug!r}")
        with self.store.transaction() as state:
            record = state["plaid"]["link_tokens"].get(link_token)
            if record is None:
                raise ValueError(f"unknown link token {link_token!r}")
            results: list[dict[str, Any]] = []
            public_token = None
            if not record["update_access_token"]:
                item = new_item(state, institution_slug, now, record["webhook"])
                public_token = item["public_token"]
                results.append(_item_add_result(state, item))
            session_id = str(uuid.uuid4())
            session: dict[str, Any] = {
                "link_session_id": session_id,
                "started_at": iso_timestamp(now),
                "finished_at": iso_timestamp(now),
                "results": {
                    "item_add_results": results,
                    "cra_item_add_results": [],
                    "cra_update_results": [],
                    "bank_income_results": [],
                    "payroll_income_results": [],
                    "document_income_results": None,
                },
            }
            if results:
                session["on_success"] = {
                    "public_token": public_token,
                    "metadata": {
                        "institution": results[0]["institution"],
                        "accounts": results[0]["accounts"],
                        "link_session_id": session_id,
                    },
                }
            record["sessions"].append(session)
        if record.get("hosted_link", True):  # tokens made before the flag was kept: Hosted
            self.webhooks.link_session_finished(
                record["webhook"],
                link_token,
                session_id,
                [public_token] if public_token else [],
                now,
            )
        return public_token

    def hosted_link_page(self, request: ApiRequest) -> ApiResponse:
        link_token = request.path_params["linkToken"]
        record = self.store.read()["plaid"]["link_tokens"].get(link_token)
        if record is None:
            return html_page(404, "Link expired", "<p>This link is invalid or has expired.</p>")
        if request.method == "POST":
            slug = request.form.get("institution", "")
            if slug not in PLAID_INSTITUTIONS:
                return html_page(400, "Unknown institution", "<p>Pick an institution.</p>")
            self.complete_link(link_token, slug, request.now)
            redirect = record["completion_redirect_uri"]
            if redirect:
                return ApiResponse(303, headers={"Location": redirect}, raw=b"")
            return html_page(200, "Connected", "<p>Account connected. You can close this tab.</p>")
        buttons = "".join(
            f"<button name='institution' value='{html.escape(i.slug)}'>"
            f"{html.escape(i.name)}</button>"
            for i in PLAID_INSTITUTIONS.values()
        )
        action = html.escape(f"{PREFIX}/hosted-link/{link_token}")
        return html_page(
            200,
            "Plaid Hosted Link (emulator)",
            f"<h1>{html.escape(record['client_name'])} wants to connect your account</h1>"
            f"<form method='post' action='{action}'>{buttons}</form>",
        )


def _item_add_result(state: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    institution = PLAID_INSTITUTIONS[item["institution"]]
    return {
        "public_token": item["public_token"],
        "accounts": [
            {
                "id": account_id,
                "name": template.name,
                "mask": template.mask,
                "type": "investment",
                "subtype": template.subtype,
                "verification_status": None,
                "class_type": None,
            }
            for template, account_id in render.accounts_of(state, item)
        ],
        "institution": {
            "name": institution.name,
            "institution_id": institution.plaid_institution_id,
        },
    }
