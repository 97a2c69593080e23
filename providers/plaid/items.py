"""Plaid Items: their state, their access tokens in the secret store, and their removal.

Removing an Item (``/item/remove``) is the only way to stop its monthly fee and
cannot be undone; the token secret is then only *scheduled* for deletion.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.errors import BrokerageHubError, Conflict, InvalidInput, ItemNotFound, NotFound
from core.redaction import register_secret
from core.secret_names import PLAID_TOKEN_PREFIX, plaid_tokens_prefix
from core.secret_store import SecretStore
from providers.plaid.client import call, to_plain

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi

log = logging.getLogger(__name__)

TOKEN_RECOVERY_DAYS = 7


def get_plaid_item(access_token: str, client: PlaidApi, *, subject: str | None = None) -> dict:
    """``/item/get``: the Item's state (error, consent expiry, institution)."""
    from plaid.model.item_get_request import ItemGetRequest

    register_secret(access_token)
    response = call(
        client,
        "/item/get",
        lambda: client.item_get(ItemGetRequest(access_token=access_token)),
        subject=subject,
    )
    return to_plain(response)


def remove_plaid_connection(
    access_token: str, client: PlaidApi, *, subject: str | None = None
) -> dict[str, Any]:
    """``/item/remove``: end the Item at Plaid (the only way to stop its monthly fee)."""
    from plaid.model.item_remove_request import ItemRemoveRequest

    register_secret(access_token)
    request = ItemRemoveRequest(access_token=access_token)
    return to_plain(
        call(client, "/item/remove", lambda: client.item_remove(request), subject=subject)
    )


# --- tokens in the secret store ---------------------------------------------------------


def list_user_tokens(user_id: str, store: SecretStore) -> list[str]:
    """The names (strings) of the user's Plaid access-token secrets, sorted."""
    if not isinstance(user_id, str) or not user_id or "/" in user_id:
        raise InvalidInput(
            f"user id {str(user_id)[:80]!r} is not valid: an email address without '/'",
            field="user_id",
        )
    return store.list_names(f"{PLAID_TOKEN_PREFIX}{user_id}/")


def get_plaid_token(secret_name: str, store: SecretStore) -> str:
    """Read one access token from the secret store."""
    token = store.get(secret_name)
    register_secret(token)
    return token


def institution_slug_of(secret_name: str) -> str:
    """The last path segment of ``plaid/access_token/<email>/<slug>``."""
    return secret_name.rstrip("/").rsplit("/", 1)[-1]


def matching_token_names(names: list[str], user_id: str, institution_slug: str) -> list[str]:
    """Names whose path below ``plaid/access_token/<user>/`` has ``institution_slug`` as a
    whole segment, so ``interactive-brokers`` never matches ``interactive-brokers-old``."""
    prefix = plaid_tokens_prefix(user_id)
    return [
        name
        for name in names
        if name.startswith(prefix) and institution_slug in name[len(prefix) :].split("/")
    ]


# --- removing an Item ---------------------------------------------------------------------


def remove_plaid_institution(
    user_id: str,
    institution_slug: str,
    client: PlaidApi,
    *,
    store: SecretStore,
    dry_run: bool = True,
) -> dict[str, Any]:
    """Remove one institution's Plaid Item, then schedule its token secret for deletion.

    Dry run by default. Exactly one token secret must match the slug (zero or
    several is an error listing what was found; nothing is touched). The Item is
    removed at Plaid FIRST: once the secret is scheduled for deletion the token
    can no longer be read to retry the removal, and a billed Item would be left
    without a token. An Item Plaid already says is gone counts as removed. The
    secret is only ever scheduled (7-day recovery window), never force-deleted.
    """
    names = list_user_tokens(user_id, store)
    matches = matching_token_names(names, user_id, institution_slug)
    if len(matches) != 1:
        found = ", ".join(names) or "none"
        problem = "no Plaid token matches" if not matches else "several Plaid tokens match"
        error_class = NotFound if not matches else Conflict
        raise error_class(
            f"{problem} institution {institution_slug!r} for {user_id}; nothing was changed. "
            f"Tokens found: {found}"
        )
    secret_name = matches[0]
    access_token = get_plaid_token(secret_name, store)
    result = {
        "secret_name": secret_name,
        "plaid_removed": False,
        "secret_deleted": False,
        "dry_run": dry_run,
    }
    if dry_run:
        return result
    try:
        remove_plaid_connection(access_token, client, subject=institution_slug)
    except ItemNotFound:
        log.info("Plaid Item for %s was already removed", institution_slug)
    result["plaid_removed"] = True
    store.schedule_deletion(secret_name, recovery_days=TOKEN_RECOVERY_DAYS)
    result["secret_deleted"] = True
    return result


def delete_plaid_user_tokens(
    user_id: str, client: PlaidApi, *, store: SecretStore, dry_run: bool = True
) -> list[dict[str, Any]]:
    """Remove every Plaid Item of the user, one by one, with the same steps (dry run by default).

    A failure on one Item is reported in its entry (``error``) and does not stop
    the others; its secret stays.
    """
    results = []
    for secret_name in list_user_tokens(user_id, store):
        slug = institution_slug_of(secret_name)
        try:
            results.append(
                remove_plaid_institution(user_id, slug, client, store=store, dry_run=dry_run)
            )
        except BrokerageHubError as exc:
            results.append(
                {
                    "secret_name": secret_name,
                    "plaid_removed": False,
                    "secret_deleted": False,
                    "dry_run": dry_run,
                    "error": exc.message,
                }
            )
    return results
