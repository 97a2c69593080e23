"""What every SnapTrade module shares: where the API is served, its error body and
fault table.

Errors use the body SnapTrade documents for real errors: ``{"detail", "status_code", "code"}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.routing import ApiResponse

PROVIDER = "snaptrade"
PREFIX = "/snaptrade"


@dataclass(frozen=True)
class SnapTradeErrorSpec:
    status: int
    code: str
    detail: str


# Fault name -> SnapTrade's answer. "0000" is SnapTrade's generic code (throttling, ...).
SNAPTRADE_FAULTS: dict[str, SnapTradeErrorSpec] = {
    "1020": SnapTradeErrorSpec(
        403, "1020", "Trading is not enabled for this client. Contact SnapTrade to enable it."
    ),
    "1066": SnapTradeErrorSpec(403, "1066", "You do not have permission to perform this action."),
    "3003": SnapTradeErrorSpec(
        402,
        "3003",
        "Unable to sync with brokerage account because the connection is disabled. "
        "Reconnect it through the connection portal.",
    ),
    "429": SnapTradeErrorSpec(429, "0000", "Request was throttled."),
    "500": SnapTradeErrorSpec(500, "0000", "An unexpected error occurred."),
    "503": SnapTradeErrorSpec(
        503, "0000", "The brokerage is temporarily unavailable. Please try again later."
    ),
}


def snaptrade_error(spec: SnapTradeErrorSpec, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(
        spec.status,
        {"detail": spec.detail, "status_code": spec.status, "code": spec.code},
        headers or {},
    )


def error(status: int, code: str, detail: str) -> ApiResponse:
    return snaptrade_error(SnapTradeErrorSpec(status, code, detail))


class SnapTradeAnswerError(Exception):
    """Raised inside a handler to answer with a SnapTrade error (``SnapTradeApi`` catches it)."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response
