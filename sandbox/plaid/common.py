"""What every Plaid module shares: where the API is served, its error body and
fault table, and the request checks that answer with an error.

Errors use Plaid's PlaidError body (HTTP status and fields per Plaid's error docs).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sandbox.routing import ApiRequest, ApiResponse

PROVIDER = "plaid"
PREFIX = "/plaid"

# Plaid reports rate limits with an endpoint-specific error_code under
# error_type RATE_LIMIT_EXCEEDED (see Plaid's "Rate Limit Exceeded errors").
RATE_LIMIT_CODES = {
    "/investments/holdings/get": "INVESTMENT_HOLDINGS_GET_LIMIT",
    "/investments/transactions/get": "INVESTMENT_TRANSACTIONS_LIMIT",
    "/accounts/get": "ACCOUNTS_LIMIT",
    "/item/get": "ITEM_GET_LIMIT",
    "/institutions/get_by_id": "INSTITUTIONS_GET_BY_ID_LIMIT",
}


@dataclass(frozen=True)
class PlaidErrorSpec:
    status: int
    error_type: str
    error_code: str
    message: str
    display_message: str | None = None


# Fault name -> the error Plaid answers with (HTTP status and body per Plaid's error docs).
PLAID_FAULTS: dict[str, PlaidErrorSpec] = {
    "ITEM_LOGIN_REQUIRED": PlaidErrorSpec(
        400,
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        "the login details of this item have changed (credentials, MFA, or required user "
        "action) and a user login is required to update this information. use Link's update "
        "mode to restore the item to a good state",
        "The login details of this account have changed. Please reconnect it.",
    ),
    "RATE_LIMIT_EXCEEDED": PlaidErrorSpec(
        429,
        "RATE_LIMIT_EXCEEDED",
        "RATE_LIMIT",
        "rate limit exceeded for attempts to access this item. please try again later",
    ),
    "INSTITUTION_DOWN": PlaidErrorSpec(
        400,
        "INSTITUTION_ERROR",
        "INSTITUTION_DOWN",
        "this institution is not currently responding to this request. please try again soon",
        "This financial institution is not currently responding. Please try again later.",
    ),
    "INTERNAL_SERVER_ERROR": PlaidErrorSpec(
        500,
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
        "an unexpected error occurred",
        "Something went wrong. Please try again later.",
    ),
    "ITEM_NOT_FOUND": PlaidErrorSpec(
        400,
        "ITEM_ERROR",
        "ITEM_NOT_FOUND",
        "the Item you requested cannot be found. This Item does not exist, has been "
        "previously removed via /item/remove, or has had access removed by the user.",
    ),
    "INVALID_ACCESS_TOKEN": PlaidErrorSpec(
        400,
        "INVALID_INPUT",
        "INVALID_ACCESS_TOKEN",
        "provided access token is in an invalid format. expected format: "
        "access-<environment>-<identifier>",
    ),
    "503": PlaidErrorSpec(
        503,
        "API_ERROR",
        "PLANNED_MAINTENANCE",
        "the Plaid API is temporarily unavailable due to planned maintenance. visit "
        "https://status.plaid.com/ for more information",
        "This service is temporarily unavailable. Please try again later.",
    ),
}


def plaid_error(spec: PlaidErrorSpec, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(
        spec.status,
        {
            "error_type": spec.error_type,
            "error_code": spec.error_code,
            "error_code_reason": None,
            "error_message": spec.message,
            "display_message": spec.display_message,
            "request_id": request_id(),
            "causes": [],
            "status": spec.status,
            "documentation_url": f"https://plaid.com/docs/errors/#{spec.error_code.lower()}",
            "suggested_action": None,
        },
        headers or {},
    )


def invalid_request(code: str, message: str) -> ApiResponse:
    return plaid_error(PlaidErrorSpec(400, "INVALID_REQUEST", code, message))


def invalid_input(code: str, message: str) -> ApiResponse:
    return plaid_error(PlaidErrorSpec(400, "INVALID_INPUT", code, message))


def request_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(15))


class PlaidAnswerError(Exception):
    """Raised inside a handler to answer with a Plaid error (``PlaidApi`` catches it)."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


def required_fields(request: ApiRequest, *names: str) -> dict[str, Any]:
    """The JSON body, or a MISSING_FIELDS answer when one of ``names`` is absent or empty."""
    body = request.json_object()
    missing = [n for n in names if body.get(n) in (None, "")]
    if missing:
        raise PlaidAnswerError(
            invalid_request(
                "MISSING_FIELDS",
                "the following required fields are missing: " + ", ".join(missing),
            )
        )
    return body
