"""Linking an Item through Plaid Hosted Link: link token, polling, public-token exchange."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInput, ProviderTimeout
from core.redaction import register_secret
from providers.plaid.client import call, to_plain
from providers.plaid.errors import PROVIDER

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi


def create_link_token(
    client: PlaidApi,
    user_email: str,
    *,
    hosted_link: bool = True,
    completion_redirect_uri: str | None = None,
    access_token: str | None = None,
    webhook: str | None = None,
) -> dict[str, Any]:
    """``/link/token/create`` for investments; with ``access_token`` it opens update mode;
    ``webhook`` is where Plaid sends this Item's webhooks."""
    from plaid.model.country_code import CountryCode
    from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
    from plaid.model.link_token_create_request import LinkTokenCreateRequest
    from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
    from plaid.model.products import Products

    kwargs: dict[str, Any] = {
        "client_name": "Brokerage Hub",
        "language": "en",
        "country_codes": [CountryCode("US")],
        "user": LinkTokenCreateRequestUser(client_user_id=user_email),
    }
    if webhook:
        kwargs["webhook"] = webhook
    if access_token:
        register_secret(access_token)
        kwargs["access_token"] = access_token
    else:
        kwargs["products"] = [Products("investments")]
    if hosted_link:
        hosted = (
            LinkTokenCreateHostedLink(completion_redirect_uri=completion_redirect_uri)
            if completion_redirect_uri
            else LinkTokenCreateHostedLink()
        )
        kwargs["hosted_link"] = hosted
    request = LinkTokenCreateRequest(**kwargs)
    return to_plain(call(client, "/link/token/create", lambda: client.link_token_create(request)))


def get_link_token(link_token: str, client: PlaidApi) -> dict[str, Any]:
    from plaid.model.link_token_get_request import LinkTokenGetRequest

    request = LinkTokenGetRequest(link_token=link_token)
    return to_plain(call(client, "/link/token/get", lambda: client.link_token_get(request)))


def public_token_from_link(link: dict[str, Any]) -> str | None:
    """The first public token a finished Hosted Link session produced, if any."""
    for session in link.get("link_sessions") or []:
        results = session.get("results") or {}
        for item in results.get("item_add_results") or []:
            if item.get("public_token"):
                return str(item["public_token"])
    return None


def wait_for_public_token(
    link_token: str,
    timeout: float = 300,
    poll: float = 10,
    *,
    client: PlaidApi,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> str:
    """Poll ``/link/token/get`` until the person finishes Hosted Link, or time out."""
    if timeout <= 0 or poll <= 0:
        raise InvalidInput("timeout and poll must be positive numbers of seconds")
    deadline = monotonic() + timeout
    while True:
        token = public_token_from_link(get_link_token(link_token, client))
        if token:
            register_secret(token)
            return token
        if monotonic() + poll > deadline:
            raise ProviderTimeout(
                f"Plaid Link was not completed within {timeout:g} s",
                provider=PROVIDER,
                endpoint="/link/token/get",
            )
        sleep(poll)


def exchange_public_token(public_token: str, client: PlaidApi) -> tuple[str, str]:
    """``/item/public_token/exchange`` -> (access_token, item_id)."""
    from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest

    register_secret(public_token)
    request = ItemPublicTokenExchangeRequest(public_token=public_token)
    response = to_plain(
        call(
            client,
            "/item/public_token/exchange",
            lambda: client.item_public_token_exchange(request),
        )
    )
    register_secret(response["access_token"])
    return response["access_token"], response["item_id"]
