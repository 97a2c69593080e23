"""Plaid connection health: one ``/item/get`` per Item, never a data call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import ItemNotFound, LoginRequired, ProviderError, SecretStoreError
from core.normalized import institution_display_name
from core.redaction import redact_text
from core.secret_store import SecretStore
from providers.plaid.errors import LOGIN_REQUIRED_CODES, plaid_detail
from providers.plaid.holdings import as_datetime
from providers.plaid.items import get_plaid_item, institution_slug_of, list_user_tokens

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi

# Plaid warns (PENDING_EXPIRATION) seven days before an Item's consent expires.
CONSENT_WARNING_DAYS = 7


def check_plaid_connection_health(
    user_email: str,
    client: PlaidApi,
    *,
    store: SecretStore,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One ``/item/get`` per Plaid Item of the user: is it usable, and what does it need.

    Each row: ``item_id``, ``institution_slug``, ``institution_name``, ``status``
    (ok, login_required, removed or error), ``ok``, ``needs_relogin``
    (ITEM_LOGIN_REQUIRED and friends: re-link in Link update mode),
    ``consent_expiration_time`` (ISO date-time or None), ``consent_expiring``
    (within CONSENT_WARNING_DAYS) and ``error``. One Item's failure stays in its row.
    """
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for secret_name in list_user_tokens(user_email, store):
        slug = institution_slug_of(secret_name)
        row: dict[str, Any] = {
            "item_id": None,
            "institution_slug": slug,
            "institution_name": institution_display_name(slug),
            "status": "error",
            "ok": False,
            "needs_relogin": False,
            "consent_expiration_time": None,
            "consent_expiring": False,
            "error": None,
        }
        rows.append(row)
        try:
            answer = get_plaid_item(store.get(secret_name), client, subject=slug)
        except LoginRequired as exc:
            row.update(status="login_required", needs_relogin=True, error=exc.message)
            continue
        except ItemNotFound as exc:
            row.update(status="removed", error=exc.message)
            continue
        except (ProviderError, SecretStoreError) as exc:
            row["error"] = exc.message
            continue
        item = answer.get("item") or {}
        row["item_id"] = item.get("item_id")
        row["institution_name"] = item.get("institution_name") or row["institution_name"]
        consent = as_datetime(item.get("consent_expiration_time"))
        if consent is not None:
            row["consent_expiration_time"] = consent.isoformat()
            row["consent_expiring"] = consent - now <= timedelta(days=CONSENT_WARNING_DAYS)
        # /item/get answers 200 for a broken Item and names the problem in item.error.
        item_error = item.get("error") or {}
        code = item_error.get("error_code") if isinstance(item_error, dict) else None
        if code in LOGIN_REQUIRED_CODES:
            message = plaid_detail(item_error)
            row.update(
                status="login_required",
                needs_relogin=True,
                error=redact_text(f"{code}: {message}. Re-link the Item in Link update mode."),
            )
        elif code:
            message = plaid_detail(item_error)
            row["error"] = redact_text(f"{code}: {message}")
        else:
            row.update(status="ok", ok=True)
    return rows
