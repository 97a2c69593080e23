"""SnapTrade users and their brokerage connections (authorizations), and the connection portal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import MalformedResponse
from core.redaction import register_secret
from providers.snaptrade.client import body, snaptrade_call
from providers.snaptrade.errors import PROVIDER

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade


@snaptrade_call("POST /snapTrade/registerUser")
def register_user(client: SnapTrade, user_id: str) -> dict[str, Any]:
    return body(
        client.authentication.register_snap_trade_user(user_id=user_id),
        "/snapTrade/registerUser",
        dict,
    )


def register_snaptrade_user(user_email: str, client: SnapTrade) -> str:
    """Register the person with SnapTrade; returns the new user secret (store it at once)."""
    body = register_user(client, user_email)
    secret = body.get("userSecret")
    if not secret:
        raise MalformedResponse(
            "SnapTrade registerUser answer has no userSecret",
            provider=PROVIDER,
            endpoint="/snapTrade/registerUser",
        )
    register_secret(str(secret))
    return str(secret)


@snaptrade_call("POST /snapTrade/login")
def login_snaptrade_user(
    client: SnapTrade,
    user_id: str,
    user_secret: str,
    *,
    connection_type: str = "read",
    reconnect: str | None = None,
    custom_redirect: str | None = None,
    broker: str | None = None,
) -> dict[str, Any]:
    """Open the connection portal: returns ``redirectURI`` (and ``sessionId``)."""
    kwargs: dict[str, Any] = {"connection_type": connection_type}
    if reconnect:
        kwargs["reconnect"] = reconnect
    if custom_redirect:
        kwargs["custom_redirect"] = custom_redirect
    if broker:
        kwargs["broker"] = broker
    return body(
        client.authentication.login_snap_trade_user(
            user_id=user_id, user_secret=user_secret, **kwargs
        ),
        "/snapTrade/login",
        dict,
    )


@snaptrade_call("GET /authorizations")
def list_authorizations(client: SnapTrade, user_id: str, user_secret: str) -> list[dict[str, Any]]:
    return body(
        client.connections.list_brokerage_authorizations(user_id=user_id, user_secret=user_secret),
        "/authorizations",
        list,
    )


@snaptrade_call("GET /authorizations/{id}")
def get_authorization(
    client: SnapTrade, user_id: str, user_secret: str, authorization_id: str
) -> dict[str, Any]:
    return body(
        client.connections.detail_brokerage_authorization(
            authorization_id=authorization_id, user_id=user_id, user_secret=user_secret
        ),
        "/authorizations/{id}",
        dict,
    )


def brokerage_name(authorization: dict[str, Any]) -> str:
    brokerage = authorization.get("brokerage") or {}
    return str(brokerage.get("display_name") or brokerage.get("name") or authorization.get("name"))


def list_snaptrade_connections(
    user_email: str, client: SnapTrade, *, user_secret: str
) -> list[dict[str, Any]]:
    """The user's brokerage authorizations: id, brokerage, type, disabled state."""
    register_secret(user_secret)  # registered where it enters, before SnapTrade can echo it
    secret = user_secret
    return [
        {
            "authorization_id": str(auth.get("id")),
            "brokerage_name": brokerage_name(auth),
            "connection_type": auth.get("type"),
            "disabled": bool(auth.get("disabled")),
            "disabled_date": auth.get("disabled_date"),
        }
        for auth in list_authorizations(client, user_email, secret)
    ]
