"""Plaid adapter: the only module that imports ``plaid``.

Plaid calls in, plain dicts and :class:`NormalizedPosition` out; every Plaid
failure leaves as one of ``services.errors`` (mapped once, in
:func:`_map_plaid_error`). The module-level functions are also the REPL API:
each takes the Plaid client as a parameter (see :func:`make_plaid_client`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from services.errors import (
    BrokerageHubError,
    InvalidInput,
    ItemNotFound,
    LoginRequired,
    MalformedResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from services.normalized import NormalizedPosition, institution_display_name
from services.provider_calls import (
    CallSink,
    call_with_retry,
    instrument_rest_client,
    ledger_subject,
    map_network_error,
    retry_after_seconds,
)
from services.redaction import redact_text, register_secret

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi

    from services.secret_store import SecretStore
    from settings import Settings

log = logging.getLogger(__name__)

PROVIDER = "plaid"

# Plaid error codes that are worth another try with backoff (Plaid's own advice).
RETRYABLE_CODES = frozenset(
    {
        "INSTITUTION_DOWN",
        "INSTITUTION_NOT_RESPONDING",
        "INSTITUTION_NOT_AVAILABLE",
        "INTERNAL_SERVER_ERROR",
        "PLANNED_MAINTENANCE",
        "PRODUCT_NOT_READY",
    }
)
# The person must re-link through Link update mode; retrying cannot help and
# repeated calls on a broken Item only add noise at the institution.
LOGIN_REQUIRED_CODES = frozenset(
    {"ITEM_LOGIN_REQUIRED", "PENDING_EXPIRATION", "PENDING_DISCONNECT", "ACCESS_NOT_GRANTED"}
)
ITEM_GONE_CODES = frozenset({"ITEM_NOT_FOUND", "INVALID_ACCESS_TOKEN"})
APP_CREDENTIAL_CODES = frozenset({"INVALID_API_KEYS", "INVALID_CLIENT_ID", "INVALID_SECRET"})

SECURITY_TYPE_MAP = {
    "equity": "equity",
    "etf": "etf",
    "mutual fund": "mutual_fund",
    "fixed income": "fixed_income",
    "derivative": "option",
    "cryptocurrency": "crypto",
    "cash": "cash",
}


# --- client ---------------------------------------------------------------------------


def plaid_host(settings: Settings, emulator_url: str | None = None) -> str:
    if settings.plaid_base_url:
        return settings.plaid_base_url
    if settings.plaid_env == "emulator":
        if not emulator_url:
            raise BrokerageHubError("PLAID_ENV=emulator needs a running emulator URL")
        return emulator_url
    from settings import PLAID_HOSTS

    return PLAID_HOSTS[settings.plaid_env]


def make_plaid_client(
    host: str,
    client_id: str,
    secret: str,
    *,
    timeout_seconds: float = 20.0,
    sink: CallSink | None = None,
) -> PlaidApi:
    """A Plaid client whose every request has a timeout and is recorded in the ledger."""
    from urllib.parse import urlsplit

    import plaid
    from plaid.api import plaid_api

    # A provider error may echo the secret back: mask it wherever our text shows it.
    register_secret(secret)
    configuration = plaid.Configuration(
        host=host, api_key={"clientId": client_id, "secret": secret}
    )
    # urllib3 would otherwise retry reads on its own, multiplying our bounded retries.
    configuration.retries = False
    api_client = plaid.ApiClient(configuration)
    instrument_rest_client(
        api_client.rest_client,
        provider=PROVIDER,
        base_path=urlsplit(host).path.rstrip("/"),
        timeout_kwarg="_request_timeout",
        timeout=(min(5.0, timeout_seconds), timeout_seconds),
        sink=sink,
    )
    return plaid_api.PlaidApi(api_client)


# --- error mapping (the one place Plaid's exceptions are translated) -------------------


def _plaid_error_fields(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return body if isinstance(body, dict) else {}


def _map_plaid_error(exc: BaseException, endpoint: str) -> ProviderError:
    import plaid

    if isinstance(exc, ProviderError):
        return exc
    network = map_network_error(exc, provider=PROVIDER, display="Plaid", endpoint=endpoint)
    if network is not None:
        return network
    if isinstance(exc, plaid.ApiException):
        status = getattr(exc, "status", None) or None
        fields = _plaid_error_fields(exc)
        code = fields.get("error_code")
        detail = fields.get("display_message") or fields.get("error_message") or exc.reason
        message = redact_text(f"Plaid {endpoint} failed ({status} {code}): {detail}")
        kwargs: dict[str, Any] = {"provider": PROVIDER, "status": status, "code": code}
        kwargs["endpoint"] = endpoint
        if code in LOGIN_REQUIRED_CODES:
            return LoginRequired(
                f"{message}. The Item needs the person to log in again (Link update mode).",
                **kwargs,
            )
        if code in ITEM_GONE_CODES:
            return ItemNotFound(message, **kwargs)
        if code in APP_CREDENTIAL_CODES or status == 401:
            return ProviderAuthError(message, **kwargs)
        if "RATE_LIMIT_EXCEEDED" in (code, fields.get("error_type")) or status == 429:
            retry_after = retry_after_seconds(getattr(exc, "headers", None))
            return RateLimited(message, retry_after=retry_after, **kwargs)
        if code in RETRYABLE_CODES or (status is not None and status >= 500):
            return ProviderUnavailable(message, **kwargs)
        if status == 0 or status is None:
            return ProviderUnavailable(message, **kwargs)
        if not fields:
            return MalformedResponse(message, **kwargs)
        return ProviderRejected(message, **kwargs)
    # plaid-python parses strictly: a missing required field is a bare TypeError,
    # a wrong type ApiTypeError/ApiValueError; a non-JSON body a ValueError.
    if isinstance(exc, (TypeError, ValueError, plaid.ApiTypeError, plaid.ApiValueError)):
        return MalformedResponse(
            f"Plaid answered {endpoint} with a body we cannot read: {redact_text(str(exc))[:200]}",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return ProviderUnavailable(
        f"Plaid {endpoint} failed: {redact_text(type(exc).__name__)}",
        provider=PROVIDER,
        endpoint=endpoint,
    )


def _call(endpoint: str, operation: Callable[[], Any], *, subject: str | None = None) -> Any:
    """One Plaid operation: mapped errors, bounded retries, ledger subject."""

    def attempt() -> Any:
        try:
            return operation()
        except Exception as exc:
            raise _map_plaid_error(exc, endpoint) from exc

    with ledger_subject(subject):
        return call_with_retry(attempt)


def _to_plain(value: Any) -> Any:
    """Plaid model objects to JSON-like values (dates stay dates)."""
    if hasattr(value, "to_dict"):
        return _to_plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if hasattr(value, "value") and type(value).__module__.startswith("plaid"):
        return value.value
    return value


# --- holdings ---------------------------------------------------------------------------


def fetch_plaid_holdings(
    access_token: str, client: PlaidApi, *, subject: str | None = None
) -> dict[str, Any]:
    """One ``/investments/holdings/get`` call for one Item.

    It already returns the Item, its accounts, holdings and securities, so no
    separate ``/accounts/get`` call is made. ``subject`` names the Item in the
    call ledger (its institution slug), since the token itself must not.
    """
    from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest

    request = InvestmentsHoldingsGetRequest(access_token=access_token)
    response = _call(
        "/investments/holdings/get",
        lambda: client.investments_holdings_get(request),
        subject=subject,
    )
    plain = _to_plain(response)
    for key in ("accounts", "holdings", "securities", "item"):
        if key not in plain:
            raise MalformedResponse(
                f"Plaid holdings answer has no {key!r}",
                provider=PROVIDER,
                endpoint="/investments/holdings/get",
            )
    return plain


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return _as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _security_type(security: dict[str, Any]) -> str:
    raw_type = str(security.get("type") or "").lower()
    subtype = str(security.get("subtype") or "").lower()
    if raw_type == "cash":
        return "cash"
    if "money market" in subtype or (
        raw_type == "mutual fund" and security.get("is_cash_equivalent")
    ):
        return "money_market"
    return SECURITY_TYPE_MAP.get(raw_type, "other")


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def normalize_plaid_holdings(
    holdings: Iterable[dict[str, Any]],
    securities: Iterable[dict[str, Any]],
    *,
    accounts: Iterable[dict[str, Any]] = (),
    user_email: str = "",
    institution: str = "",
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """Plaid holdings to normalized positions; cash summed into one row per account and currency."""
    securities_by_id = {s["security_id"]: s for s in securities}
    accounts_by_id = {a["account_id"]: a for a in accounts}
    positions: list[NormalizedPosition] = []
    cash: dict[tuple[str, str], dict[str, Any]] = {}
    for holding in holdings:
        security = securities_by_id.get(holding.get("security_id"), {})
        account = accounts_by_id.get(holding.get("account_id"), {})
        currency = (
            holding.get("iso_currency_code")
            or holding.get("unofficial_currency_code")
            or security.get("iso_currency_code")
            or "USD"
        )
        quantity = _float(holding.get("quantity"))
        if quantity is None:
            raise MalformedResponse(
                "Plaid holding without a quantity",
                provider=PROVIDER,
                endpoint="/investments/holdings/get",
            )
        value = _float(holding.get("institution_value"))
        security_type = _security_type(security)
        as_of = (
            _as_datetime(holding.get("institution_price_datetime"))
            or _as_datetime(holding.get("institution_price_as_of"))
            or fetched_at
        )
        account_fields: dict[str, Any] = {
            "account_id": str(holding.get("account_id")),
            "account_name": account.get("official_name") or account.get("name"),
            "account_type": account.get("subtype") or account.get("type"),
            "account_mask": account.get("mask"),
        }
        if security_type == "cash":
            key = (account_fields["account_id"], currency)
            entry = cash.setdefault(key, {**account_fields, "value": 0.0, "as_of": as_of})
            entry["value"] += value if value is not None else quantity
            continue
        positions.append(
            NormalizedPosition(
                user_email=user_email,
                provider=PROVIDER,
                institution=institution,
                ticker=security.get("ticker_symbol"),
                name=security.get("name"),
                security_type=security_type,
                quantity=quantity,
                price=_float(holding.get("institution_price")),
                market_value=value,
                cost_basis=_float(holding.get("cost_basis")),
                currency=currency,
                as_of=as_of,
                **account_fields,
            )
        )
    for (_account_id, currency), entry in cash.items():
        amount = round(entry.pop("value"), 2)
        as_of = entry.pop("as_of")
        positions.append(
            NormalizedPosition(
                user_email=user_email,
                provider=PROVIDER,
                institution=institution,
                ticker=None,
                name=f"Cash ({currency})",
                security_type="cash",
                quantity=amount,
                price=1.0,
                market_value=amount,
                cost_basis=None,
                currency=currency,
                as_of=as_of,
                **entry,
            )
        )
    return positions


def load_plaid_positions(
    access_token: str,
    client: PlaidApi,
    *,
    user_email: str,
    institution_slug: str,
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """Fetch one Item and normalize it (what the position cache calls per Item)."""
    fetched_at = fetched_at or datetime.now(UTC)
    raw = fetch_plaid_holdings(access_token, client, subject=institution_slug)
    institution = raw["item"].get("institution_name") or institution_display_name(institution_slug)
    return normalize_plaid_holdings(
        raw["holdings"],
        raw["securities"],
        accounts=raw["accounts"],
        user_email=user_email,
        institution=institution,
        fetched_at=fetched_at,
    )


# --- Items ------------------------------------------------------------------------------


def get_plaid_item(access_token: str, client: PlaidApi, *, subject: str | None = None) -> dict:
    """``/item/get``: the Item's state (error, consent expiry, institution)."""
    from plaid.model.item_get_request import ItemGetRequest

    response = _call(
        "/item/get",
        lambda: client.item_get(ItemGetRequest(access_token=access_token)),
        subject=subject,
    )
    return _to_plain(response)


# --- tokens in the secret store ---------------------------------------------------------


def _store(store: SecretStore | None, region_name: str | None) -> SecretStore:
    if store is not None:
        return store
    from services.composition import default_secret_store

    return default_secret_store(region_name)


def list_user_tokens(
    user_id: str, region_name: str | None = None, *, store: SecretStore | None = None
) -> list[str]:
    """The names (strings) of the user's Plaid access-token secrets, sorted."""
    from services.secret_store import PLAID_TOKEN_PREFIX

    if not user_id or "/" in user_id:
        raise InvalidInput(f"user id {user_id!r} is not valid: an email address without '/'")
    return _store(store, region_name).list_names(f"{PLAID_TOKEN_PREFIX}{user_id}/")


def get_plaid_token(
    secret_name: str, region_name: str | None = None, *, store: SecretStore | None = None
) -> str:
    """Read one access token from the secret store."""
    return _store(store, region_name).get(secret_name)


def institution_slug_of(secret_name: str) -> str:
    """The last path segment of ``plaid/access_token/<email>/<slug>``."""
    return secret_name.rstrip("/").rsplit("/", 1)[-1]


# --- linking (Hosted Link) --------------------------------------------------------------


def create_link_token(
    client: PlaidApi,
    user_email: str,
    *,
    hosted_link: bool = True,
    completion_redirect_uri: str | None = None,
    access_token: str | None = None,
) -> dict[str, Any]:
    """``/link/token/create`` for investments; with ``access_token`` it opens update mode."""
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
    if access_token:
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
    return _to_plain(_call("/link/token/create", lambda: client.link_token_create(request)))


def get_link_token(link_token: str, client: PlaidApi) -> dict[str, Any]:
    from plaid.model.link_token_get_request import LinkTokenGetRequest

    request = LinkTokenGetRequest(link_token=link_token)
    return _to_plain(_call("/link/token/get", lambda: client.link_token_get(request)))


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

    request = ItemPublicTokenExchangeRequest(public_token=public_token)
    response = _to_plain(
        _call("/item/public_token/exchange", lambda: client.item_public_token_exchange(request))
    )
    return response["access_token"], response["item_id"]


# --- removing an Item (stops its monthly fee; cannot be undone) ------------------------


def remove_plaid_connection(
    access_token: str, client: PlaidApi, *, subject: str | None = None
) -> dict[str, Any]:
    """``/item/remove``: end the Item at Plaid (the only way to stop its monthly fee)."""
    from plaid.model.item_remove_request import ItemRemoveRequest

    request = ItemRemoveRequest(access_token=access_token)
    return _to_plain(_call("/item/remove", lambda: client.item_remove(request), subject=subject))


def _matching_token_names(names: list[str], user_id: str, institution_slug: str) -> list[str]:
    """Names whose path below ``plaid/access_token/<user>/`` has ``institution_slug`` as a
    whole segment, so ``interactive-brokers`` never matches ``interactive-brokers-old``."""
    from services.secret_store import plaid_tokens_prefix

    prefix = plaid_tokens_prefix(user_id)
    return [
        name
        for name in names
        if name.startswith(prefix) and institution_slug in name[len(prefix) :].split("/")
    ]


def remove_plaid_institution(
    user_id: str,
    institution_slug: str,
    region_name: str | None,
    client: PlaidApi,
    dry_run: bool = True,
    *,
    store: SecretStore | None = None,
) -> dict[str, Any]:
    """Remove one institution's Plaid Item, then schedule its token secret for deletion.

    Dry run by default. Exactly one token secret must match the slug (zero or
    several is an error listing what was found; nothing is touched). The Item is
    removed at Plaid FIRST: once the secret is scheduled for deletion the token
    can no longer be read to retry the removal, and a billed Item would be left
    without a token. An Item Plaid already says is gone counts as removed. The
    secret is only ever scheduled (7-day recovery window), never force-deleted.
    """
    from services.errors import Conflict, NotFound

    store = _store(store, region_name)
    names = list_user_tokens(user_id, region_name, store=store)
    matches = _matching_token_names(names, user_id, institution_slug)
    if len(matches) != 1:
        found = ", ".join(names) or "none"
        problem = "no Plaid token matches" if not matches else "several Plaid tokens match"
        error_class = NotFound if not matches else Conflict
        raise error_class(
            f"{problem} institution {institution_slug!r} for {user_id}; nothing was changed. "
            f"Tokens found: {found}"
        )
    secret_name = matches[0]
    access_token = get_plaid_token(secret_name, region_name, store=store)
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
    store.schedule_deletion(secret_name, recovery_days=7)
    result["secret_deleted"] = True
    return result


def delete_plaid_user_tokens(
    user_id: str,
    region_name: str | None,
    client: PlaidApi,
    dry_run: bool = True,
    *,
    store: SecretStore | None = None,
) -> list[dict[str, Any]]:
    """Remove every Plaid Item of the user, one by one, with the same steps (dry run by default).

    A failure on one Item is reported in its entry (``error``) and does not stop
    the others; its secret stays.
    """
    store = _store(store, region_name)
    results = []
    for secret_name in list_user_tokens(user_id, region_name, store=store):
        slug = institution_slug_of(secret_name)
        try:
            results.append(
                remove_plaid_institution(
                    user_id, slug, region_name, client, dry_run=dry_run, store=store
                )
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


# --- connection health ------------------------------------------------------------------

# Plaid warns (PENDING_EXPIRATION) seven days before an Item's consent expires.
CONSENT_WARNING_DAYS = 7


def check_plaid_connection_health(
    user_email: str,
    client: PlaidApi,
    *,
    store: SecretStore | None = None,
    region_name: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One ``/item/get`` per Plaid Item of the user: is it usable, and what does it need.

    Each row: ``item_id``, ``institution_slug``, ``institution_name``, ``status``
    (ok, login_required, removed or error), ``ok``, ``needs_relogin``
    (ITEM_LOGIN_REQUIRED and friends: re-link in Link update mode),
    ``consent_expiration_time`` (ISO date-time or None), ``consent_expiring``
    (within CONSENT_WARNING_DAYS) and ``error``. One Item's failure stays in its row.
    """
    from datetime import timedelta

    from services.errors import SecretStoreError

    now = now or datetime.now(UTC)
    secrets = _store(store, region_name)
    rows: list[dict[str, Any]] = []
    for secret_name in list_user_tokens(user_email, store=secrets):
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
            answer = get_plaid_item(secrets.get(secret_name), client, subject=slug)
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
        consent = _as_datetime(item.get("consent_expiration_time"))
        if consent is not None:
            row["consent_expiration_time"] = consent.isoformat()
            row["consent_expiring"] = consent - now <= timedelta(days=CONSENT_WARNING_DAYS)
        # /item/get answers 200 for a broken Item and names the problem in item.error.
        item_error = item.get("error") or {}
        code = item_error.get("error_code") if isinstance(item_error, dict) else None
        if code in LOGIN_REQUIRED_CODES:
            message = item_error.get("display_message") or item_error.get("error_message")
            row.update(
                status="login_required",
                needs_relogin=True,
                error=redact_text(f"{code}: {message}. Re-link the Item in Link update mode."),
            )
        elif code:
            message = item_error.get("display_message") or item_error.get("error_message")
            row["error"] = redact_text(f"{code}: {message}")
        else:
            row.update(status="ok", ok=True)
    return rows
