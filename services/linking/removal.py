"""Ending a Plaid Item: removed at Plaid, its token scheduled for deletion, and remembered.

Removing the Item is what stops its monthly fee; recording it as ``removed`` is
what lets the cost report and ``cache_info`` stop counting it (a token scheduled
for deletion alone could also be an Item still billed at Plaid).
"""

from __future__ import annotations

from typing import Any

from core.normalized import institution_display_name
from providers.plaid.items import delete_plaid_user_tokens, remove_plaid_institution
from services.connections import ConnectionRegistry, ProviderAccess
from services.positions import PositionService


class PlaidItemRemoval:
    def __init__(
        self, access: ProviderAccess, connections: ConnectionRegistry, positions: PositionService
    ) -> None:
        self._access = access
        self._connections = connections
        self._positions = positions

    def remove_institution(
        self, institution_slug: str, *, dry_run: bool = True, record: bool = True
    ) -> dict[str, Any]:
        """Remove one institution's Item (dry run by default); see the adapter's guarantees.

        With ``record`` (the default) a real removal is also recorded and the
        institution's cached Plaid rows are dropped, so no total counts an Item that
        no longer exists. A migration records it itself, after its own steps.
        """
        result = remove_plaid_institution(
            self._access.user_email,
            institution_slug,
            self._access.plaid_client(),
            store=self._access.secret_store,
            dry_run=dry_run,
        )
        if record and result["plaid_removed"]:
            name = self.record_removed(institution_slug)
            self._positions.delete_provider_positions("plaid", institution=name)
        return result

    def remove_all(self, *, dry_run: bool = True) -> list[dict[str, Any]]:
        """Every Item of the person, one by one (dry run by default)."""
        results = delete_plaid_user_tokens(
            self._access.user_email,
            self._access.plaid_client(),
            store=self._access.secret_store,
            dry_run=dry_run,
        )
        for result in results:
            if result["plaid_removed"]:
                slug = result["secret_name"].rsplit("/", 1)[-1]
                name = self.record_removed(slug)
                self._positions.delete_provider_positions("plaid", institution=name)
        return results

    def record_removed(self, institution_slug: str, institution_name: str | None = None) -> str:
        """Remember the Item as removed at Plaid; returns the institution's name."""
        return record_item_removed(
            self._connections, self._access.user_email, institution_slug, institution_name
        )


def record_item_removed(
    connections: ConnectionRegistry,
    user_email: str,
    institution_slug: str,
    institution_name: str | None = None,
) -> str:
    """Remember one person's Item as removed at Plaid; returns the institution's name."""
    state = connections.get(user_email, "plaid", institution_slug)
    name = (
        institution_name
        or (state and state.institution_name)
        or institution_display_name(institution_slug)
    )
    connections.record(
        user_email,
        "plaid",
        institution_slug,
        status="removed",
        institution_name=name,
        institution_slug=institution_slug,
    )
    return name
