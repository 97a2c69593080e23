"""Institutions reachable through both providers: found, reported, and counted once.

When Interactive Brokers is linked through Plaid and SnapTrade, its positions
arrive twice. Every total and summary counts them once, from the provider that
comes first in ``PROVIDER_PRIORITY``; the other copy stays visible, marked as a
duplicate, and the report says how to end the overlap (and the second bill): for
each surface its own way (``resolve``: what to move, from and to where, as data for the
web app's migration page and the ``plan_institution_migration`` tool; ``resolve_with``:
the terminal command).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from core.normalized import institution_slug

# The only move the migration supports: the Plaid Item goes, the SnapTrade connection stays.
MIGRATION_ROUTE = ("plaid", "snaptrade")
PLAN_TOOL = "plan_institution_migration"


@dataclass(frozen=True)
class Overlap:
    institution: str
    providers: tuple[str, ...]
    counted_under: str
    accounts: list[dict[str, Any]]
    command: str  # the terminal command that ends the overlap
    slug: str = ""
    source: str = ""  # the provider whose link the move removes
    target: str = ""  # the provider that keeps the institution

    def to_dict(self) -> dict[str, Any]:
        return {
            "institution": self.institution,
            "providers": list(self.providers),
            "counted_under": self.counted_under,
            "accounts": self.accounts,
            "resolve_with": self.command,
            # The same as data: the web app links its migration page, MCP names the tool.
            "resolve": {
                "action": "migrate_institution",
                "institution_slug": self.slug,
                "from": self.source,
                "to": self.target,
                "tool": PLAN_TOOL,
            },
        }


def _account_key(position: dict[str, Any]) -> tuple[str, str]:
    return (
        str(position.get("account_type") or "").lower(),
        str(position.get("account_mask") or ""),
    )


def find_overlaps(
    positions: list[dict[str, Any]], priority: tuple[str, ...]
) -> tuple[list[Overlap], set[tuple[str, str]]]:
    """(overlaps, {(provider, account_id)} whose rows are duplicates and must not be counted)."""
    accounts: dict[str, dict[str, dict[str, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for p in positions:
        accounts[p["institution"]][p["provider"]].setdefault(p["account_id"], p)
    overlaps: list[Overlap] = []
    duplicates: set[tuple[str, str]] = set()
    for institution, by_provider in sorted(accounts.items()):
        if len(by_provider) < 2:
            continue
        providers = tuple(p for p in priority if p in by_provider) + tuple(
            sorted(p for p in by_provider if p not in priority)
        )
        preferred = providers[0]
        matched = []
        for other in providers[1:]:
            preferred_by_key = {
                _account_key(row): acct for acct, row in by_provider[preferred].items()
            }
            for account_id, row in by_provider[other].items():
                match = preferred_by_key.get(_account_key(row))
                # Only a matched account is the same money twice; an account the
                # preferred provider does not show still counts where it is.
                if match is not None:
                    duplicates.add((other, account_id))
                matched.append(
                    {
                        "account_type": row.get("account_type"),
                        "mask": row.get("account_mask"),
                        preferred: match,
                        other: account_id,
                        "matched": match is not None,
                    }
                )
        source, target = (
            MIGRATION_ROUTE
            if set(MIGRATION_ROUTE) <= set(providers)
            else (providers[-1], preferred)
        )
        slug = institution_slug(institution)
        overlaps.append(
            Overlap(
                institution=institution,
                providers=providers,
                counted_under=preferred,
                accounts=matched,
                command=(
                    f"flask --app app migrate-institution {slug} "
                    f"--from {source} --to {target} --execute"
                ),
                slug=slug,
                source=source,
                target=target,
            )
        )
    return overlaps, duplicates
