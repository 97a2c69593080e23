"""Finding and making Plaid records in the shared state: the Item behind an access
token, an institution by its Plaid id, a fresh Item for a new link.
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.data import PLAID_INSTITUTIONS, Institution, stable_plaid_id
from sandbox.plaid.common import PLAID_FAULTS, PlaidAnswerError, invalid_input, plaid_error
from sandbox.routing import iso_timestamp


def item_for_token(state: dict[str, Any], access_token: str) -> dict[str, Any]:
    """The live Item of ``access_token``; a removed or unknown one answers Plaid's error."""
    for item in state["plaid"]["items"].values():
        if item["access_token"] == access_token:
            if item["removed"]:
                raise PlaidAnswerError(plaid_error(PLAID_FAULTS["ITEM_NOT_FOUND"]))
            return item
    raise PlaidAnswerError(plaid_error(PLAID_FAULTS["INVALID_ACCESS_TOKEN"]))


def institution_by_plaid_id(institution_id: str) -> Institution:
    for institution in PLAID_INSTITUTIONS.values():
        if institution.plaid_institution_id == institution_id:
            return institution
    raise PlaidAnswerError(invalid_input("INVALID_INSTITUTION", "invalid institution_id provided"))


def new_item(
    state: dict[str, Any], institution_slug: str, now: float, webhook: str | None = None
) -> dict[str, Any]:
    """A fresh Item waiting for its public token to be exchanged (new account ids), sending
    its webhooks to ``webhook`` (None: it sends none)."""
    item_id = stable_plaid_id("item", str(uuid.uuid4()))
    institution = PLAID_INSTITUTIONS[institution_slug]
    item = {
        "item_id": item_id,
        "institution": institution_slug,
        "access_token": None,
        "public_token": f"public-sandbox-{uuid.uuid4()}",
        "created_at": iso_timestamp(now),
        "removed": False,
        "webhook": webhook,
        "account_ids": {
            a.key: stable_plaid_id("account", item_id, a.key) for a in institution.accounts
        },
    }
    state["plaid"]["items"][item_id] = item
    return item
