"""What each provider really costs, and what wastes money.

Billing facts (PROVIDERS.md): Plaid Investments Holdings is a monthly fee per
Item while a valid access token exists, called or not; only
``/investments/refresh`` is billed per call; ``/item/remove`` is the only way to
stop the fee. SnapTrade bills per connected user per month. So the report
counts Items and users, not API calls, and uses the call ledger for the
per-call part and for the record of what was called.

Each waste is said twice: ``waste`` holds sentences for an assistant or a terminal
(naming the tool or command that ends it), and ``waste_items`` the same wastes, in the
same order, as data (``kind`` and its facts) for the web app to say what to do in a
browser, or why it cannot be done there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.normalized import institution_display_name, institution_slug
from core.secret_names import plaid_tokens_prefix, snaptrade_user_secret_name
from core.untrusted import quoted_name
from providers.plaid.items import institution_slug_of
from services.connections import ConnectionRegistry, ProviderAccess
from services.costs.ledger import SqlCallLedger
from services.positions import PositionService, find_overlaps
from services.webhooks import RefreshSavings

REFRESH_ENDPOINT = "POST /investments/refresh"
LEDGER_DAYS = 30


@dataclass(frozen=True)
class Fees:
    """What the providers charge (USD), from the settings: set them from your contracts."""

    plaid_item_monthly: float
    plaid_refresh_call: float
    snaptrade_user_monthly: float


class CostService:
    def __init__(
        self,
        access: ProviderAccess,
        connections: ConnectionRegistry,
        ledger: SqlCallLedger,
        positions: PositionService,
        fees: Fees,
        environments: Mapping[str, str] | None = None,
        savings: RefreshSavings | None = None,
        failed_key_lookups: Callable[[], int] | None = None,
    ) -> None:
        self._access = access
        self._connections = connections
        self._ledger = ledger
        self._positions = positions
        self.fees = fees
        # Each provider's environment: a disabled one is never called, but what still
        # exists at it is still billed, and the report says how to end that.
        self.environments = dict(environments or {})
        self._savings = savings
        # Plaid verification key lookups that found no key: not in the ledger (nothing
        # billed), but shown, so a flood of made-up key ids is visible.
        self._failed_key_lookups = failed_key_lookups or (lambda: 0)

    def report(self) -> dict[str, Any]:
        fees = self.fees
        store = self._access.secret_store
        email = self._access.user_email
        prefix = plaid_tokens_prefix(email)
        connections = {c.external_id: c for c in self._connections.list(email, "plaid")}
        waste = _Waste()

        items: list[dict[str, Any]] = []
        for name in store.list_names(prefix):
            slug = institution_slug_of(name)
            state = connections.get(slug)
            items.append(
                {
                    "institution": (state and state.institution_name)
                    or institution_display_name(slug),
                    "secret_name": name,
                    "billable": True,
                    "status": state.status if state else "unknown",
                }
            )
        for name in store.list_scheduled(prefix):
            slug = institution_slug_of(name)
            state = connections.get(slug)
            removed = state is not None and state.status == "removed"
            items.append(
                {
                    "institution": (state and state.institution_name)
                    or institution_display_name(slug),
                    "secret_name": name,
                    "billable": not removed,
                    "status": "token scheduled for deletion",
                }
            )
            if not removed:
                waste.add(
                    f"{name} is scheduled for deletion but its Item was never removed at "
                    "Plaid: it is still billed. Restore the secret and remove the Item "
                    "(remove_plaid_institution with dry_run=False).",
                    kind="item_not_removed",
                    institution=items[-1]["institution"],
                    institution_slug=slug,
                    secret_name=name,
                )
        live_by_institution: dict[str, list[str]] = defaultdict(list)
        for item in items:
            if item["status"] != "token scheduled for deletion":
                live_by_institution[item["institution"]].append(item["secret_name"])
        for institution, names in sorted(live_by_institution.items()):
            if len(names) > 1:
                waste.add(
                    f"{quoted_name(institution)} has {len(names)} Plaid Items "
                    f"({', '.join(names)}): each is billed and they can break each other; "
                    "keep one.",
                    kind="duplicate_items",
                    institution=institution,
                    institution_slug=institution_slug_of(names[0]),
                    secret_names=names,
                )
        for overlap in self._overlaps():
            move = overlap.get("resolve") or {}
            waste.add(
                f"{quoted_name(overlap['institution'])} is linked through both "
                f"{' and '.join(overlap['providers'])}; end the second bill by moving it "
                f"(check first with the {move.get('tool', 'plan_institution_migration')} tool, "
                "or on the web app's migration page), in a terminal: "
                f"{overlap['resolve_with']}",
                kind="overlap",
                institution=overlap["institution"],
                institution_slug=move.get("institution_slug")
                or institution_slug(overlap["institution"]),
                providers=list(overlap["providers"]),
                migrate_from=move.get("from"),
                migrate_to=move.get("to"),
            )

        billable_items = sum(1 for item in items if item["billable"])
        refresh_calls = self._ledger.count(endpoint=REFRESH_ENDPOINT, days=LEDGER_DAYS)
        snaptrade_users = 1 if self._access.snaptrade_user_secret() is not None else 0
        plaid_monthly = round(billable_items * fees.plaid_item_monthly, 2)
        plaid_calls = round(refresh_calls * fees.plaid_refresh_call, 2)
        snaptrade_monthly = round(snaptrade_users * fees.snaptrade_user_monthly, 2)
        self._billed_while_disabled(waste, items, snaptrade_users)
        avoided = (
            self._savings.calls_avoided(self._positions.user_id(), LEDGER_DAYS)
            if self._savings is not None
            else {}
        )
        cooled = self._positions.requested.refusals.counts(self._positions.user_id(), LEDGER_DAYS)
        return {
            "plaid": {
                "environment": self.environments.get("plaid"),
                "items": items,
                "billable_items": billable_items,
                "item_monthly_usd": fees.plaid_item_monthly,
                "monthly_usd": plaid_monthly,
                "refresh_calls_last_30_days": refresh_calls,
                "refresh_call_usd": fees.plaid_refresh_call,
                "refresh_calls_usd": plaid_calls,
                "holdings_calls_avoided_last_30_days": avoided.get("plaid", 0),
                **_cooldown_counts(cooled.get("plaid")),
                "webhook_key_lookups_failed_last_30_days": self._failed_key_lookups(),
            },
            "snaptrade": {
                "environment": self.environments.get("snaptrade"),
                "connected_users": snaptrade_users,
                "user_monthly_usd": fees.snaptrade_user_monthly,
                "monthly_usd": snaptrade_monthly,
                "holdings_calls_avoided_last_30_days": avoided.get("snaptrade", 0),
                **_cooldown_counts(cooled.get("snaptrade")),
            },
            "estimated_monthly_usd": round(plaid_monthly + plaid_calls + snaptrade_monthly, 2),
            "waste": waste.lines,
            "waste_items": waste.items,
            "calls_by_day": self._ledger.daily_counts(LEDGER_DAYS),
            "note": (
                "Fees are the PLAID_ITEM_MONTHLY_USD, PLAID_REFRESH_CALL_USD and "
                "SNAPTRADE_USER_MONTHLY_USD settings: set them from your contracts. "
                "Calls avoided: holdings refreshes the cache lifetimes alone would have "
                "made, which webhooks made unnecessary; they spare rate limits and wait, "
                "not the monthly fees, which do not depend on calls. Refused by the cooldown: "
                "refreshes someone asked for within REFRESH_COOLDOWN_SECONDS of the last "
                "fetch, answered from the rows just fetched (calls spared: one per Item or "
                "account, also when the others were fetched)."
            ),
        }

    def _billed_while_disabled(
        self, waste: _Waste, items: list[dict[str, Any]], snaptrade_users: int
    ) -> None:
        """What still exists at a disabled provider, is billed, and how to end it (no call)."""
        email = self._access.user_email
        billed = [item for item in items if item["billable"]]
        if self.environments.get("plaid") == "disabled" and billed:
            slugs = sorted({institution_slug_of(item["secret_name"]) for item in billed})
            monthly = len(billed) * self.fees.plaid_item_monthly
            waste.add(
                f"Plaid is disabled here (PLAID_ENV=disabled) but {len(billed)} Item(s) still "
                f"exist at Plaid and are billed (USD {monthly:.2f} a month): "
                f"{', '.join(slugs)}. Brokerage Hub never calls a disabled provider, so set "
                "PLAID_ENV back to the environment they were linked in (with PLAID_CLIENT_ID "
                "and PLAID_SECRET) and remove each with "
                f"remove_plaid_institution('{email}', '<institution>', dry_run=False) "
                "(plaid_loader), or move it first with "
                "flask --app app migrate-institution <institution> --execute.",
                kind="plaid_disabled",
                items=len(billed),
                monthly_usd=round(monthly, 2),
                institution_slugs=slugs,
            )
        if self.environments.get("snaptrade") == "disabled" and snaptrade_users:
            monthly = snaptrade_users * self.fees.snaptrade_user_monthly
            waste.add(
                f"SnapTrade is disabled here (SNAPTRADE_ENV=disabled) but the SnapTrade user "
                f"{email} still exists and is billed (USD {monthly:.2f} a month). Brokerage Hub "
                "never calls a disabled provider: delete the user in the SnapTrade dashboard, "
                "or with SNAPTRADE_ENV=production through the SnapTrade SDK's "
                f"authentication.delete_snap_trade_user(user_id='{email}'), then delete the "
                f"secret {snaptrade_user_secret_name(email)}.",
                kind="snaptrade_disabled",
                monthly_usd=round(monthly, 2),
                user_id=email,
                secret_name=snaptrade_user_secret_name(email),
            )

    def _overlaps(self) -> list[dict[str, Any]]:
        positions = self._positions
        overlaps, _ = find_overlaps(positions.get_cached_positions(), positions.provider_priority)
        return [o.to_dict() for o in overlaps]


def _cooldown_counts(counts: Mapping[str, int] | None) -> dict[str, int]:
    return {
        "refreshes_refused_by_cooldown_last_30_days": (counts or {}).get("refused", 0),
        "holdings_calls_spared_by_cooldown_last_30_days": (counts or {}).get("calls", 0),
    }


class _Waste:
    """Each waste as a sentence (``lines``) and as data (``items``), in the same order."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.items: list[dict[str, Any]] = []

    def add(self, line: str, *, kind: str, **facts: Any) -> None:
        self.lines.append(line)
        self.items.append({"kind": kind, **facts})
