"""SnapTrade adapter (with ``snaptrade_broker_adapter.py``, the only ``snaptrade_client`` user).

SnapTrade calls in, plain dicts and :class:`NormalizedPosition` out; every
SnapTrade failure leaves as one of ``services.errors`` (mapped once, in
:func:`map_snaptrade_error`). The module-level functions are also the REPL API:
each takes the SnapTrade client as a parameter (see :func:`make_snaptrade_client`).

The SnapTrade user id is the person's email; the user secret lives in the
secret store at ``snaptrade/user_secret/<email>`` and is never logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from services.errors import (
    ConnectionDisabled,
    MalformedResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    TradingNotPermitted,
)
from services.normalized import NormalizedPosition
from services.provider_calls import (
    CallSink,
    call_with_retry,
    instrument_rest_client,
    map_network_error,
    retry_after_seconds,
)
from services.redaction import redact_text, register_secret

if TYPE_CHECKING:
    from snaptrade_client import SnapTrade

    from services.secret_store import SecretStore

log = logging.getLogger(__name__)

PROVIDER = "snaptrade"
T = TypeVar("T")

# ``instrument.kind`` of a /positions/all position -> our security type.
INSTRUMENT_KINDS = {
    "stock": "equity",
    "adr": "equity",
    "etf": "etf",
    "mutualfund": "mutual_fund",
    "cef": "mutual_fund",
    "crypto": "crypto",
    "option": "option",
    "future": "other",
    "cfd": "other",
    "other": "other",
}


# --- client ---------------------------------------------------------------------------


def make_snaptrade_client(
    host: str,
    client_id: str,
    consumer_key: str,
    *,
    timeout_seconds: float = 20.0,
    sink: CallSink | None = None,
) -> SnapTrade:
    """A SnapTrade client with a timeout on every request (the SDK has none) and a ledger."""
    from snaptrade_client import SnapTrade, SnapTradeAuth
    from snaptrade_client.rest import RESTClientObject

    # A provider error may echo the key back: mask it wherever our text shows it.
    register_secret(consumer_key)
    client = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key=consumer_key, client_id=client_id),
        host=host,
    )
    # The SDK logs a warning on every list_user_accounts call (deprecated, still
    # served, and the call our health check is specified to use).
    logging.getLogger("snaptrade_client").setLevel(logging.ERROR)
    api_client = client.account_information.api_client  # shared by every tag API
    # urllib3 would otherwise retry reads on its own, multiplying our bounded retries.
    api_client.configuration.retries = False  # type: ignore[assignment]
    api_client.rest_client = RESTClientObject(api_client.configuration)
    instrument_rest_client(
        api_client.rest_client,
        provider=PROVIDER,
        base_path=urlsplit(host).path.rstrip("/"),
        timeout_kwarg="timeout",
        timeout=(min(5.0, timeout_seconds), timeout_seconds),
        sink=sink,
    )
    return client


# --- error mapping (the one place SnapTrade's exceptions are translated) ---------------


def snaptrade_error_code(exc: Any) -> str | None:
    """SnapTrade's error code, read from ``code`` or the spec's ``default_code``."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        code = body.get("code") or body.get("default_code")
        return str(code) if code not in (None, "") else None
    return None


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("default_detail") or "")
    if isinstance(body, str):
        return body[:200]
    return str(getattr(exc, "reason", "") or "")


def _retry_after(exc: Any) -> float | None:
    return retry_after_seconds(getattr(exc, "headers", None))


def map_snaptrade_error(exc: BaseException, endpoint: str) -> ProviderError:
    from snaptrade_client import ApiException

    if isinstance(exc, ProviderError):
        return exc
    network = map_network_error(exc, provider=PROVIDER, display="SnapTrade", endpoint=endpoint)
    if network is not None:
        return network
    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        code = snaptrade_error_code(exc)
        detail = redact_text(_detail(exc))
        kwargs: dict[str, Any] = {
            "provider": PROVIDER,
            "status": status,
            "code": code,
            "endpoint": endpoint,
        }
        message = f"SnapTrade {endpoint} failed (HTTP {status}, code {code}): {detail}".rstrip(": ")
        if status == 429:
            return RateLimited(message, retry_after=_retry_after(exc), **kwargs)
        if status == 402 or code == "3003":
            return ConnectionDisabled(
                f"{message}. The brokerage connection is disabled: reconnect it through the "
                "SnapTrade connection portal.",
                **kwargs,
            )
        if code in ("1020", "1066"):
            return TradingNotPermitted(message, **kwargs)
        if status == 425 or code == "3012":
            return ProviderUnavailable(f"{message} (still syncing)", **kwargs)
        if status == 401 and code == "1076":
            return ProviderAuthError(f"{message}. Check SNAPTRADE_CONSUMER_KEY.", **kwargs)
        if status == 401:
            return ProviderAuthError(
                f"{message}. The SnapTrade user is unknown or its user secret is wrong.",
                **kwargs,
            )
        if status is not None and status >= 500:
            return ProviderUnavailable(message, **kwargs)
        if status == 410:
            return ProviderRejected(f"{message}. SnapTrade has retired this endpoint.", **kwargs)
        return ProviderRejected(message, **kwargs)
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return MalformedResponse(
            f"SnapTrade answered {endpoint} with a body we cannot read",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return ProviderUnavailable(
        f"SnapTrade {endpoint} failed ({type(exc).__name__})", provider=PROVIDER, endpoint=endpoint
    )


def with_snaptrade_retry(
    endpoint: str | Callable[..., T],
) -> Any:
    """Decorator: map SnapTrade errors once, then retry 429/5xx/network failures (bounded).

    Use as ``@with_snaptrade_retry("GET /accounts")`` to name the endpoint in
    errors, or bare as ``@with_snaptrade_retry`` (the function name is used).
    """

    def decorate(fn: Callable[..., T], name: str) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            def attempt() -> T:
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    raise map_snaptrade_error(exc, name) from exc

            return call_with_retry(attempt)

        return wrapper

    if callable(endpoint):
        return decorate(endpoint, endpoint.__name__)
    return lambda fn: decorate(fn, endpoint)


def _with_ids(items: list[Any], endpoint: str, what: str) -> list[dict[str, Any]]:
    """Every element must be an object with an id: nothing else can be asked about it."""
    if not all(isinstance(item, dict) and item.get("id") for item in items):
        raise MalformedResponse(
            f"SnapTrade answered {endpoint} with {what} without an id",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return items


def _has_currency(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("code"))
    return isinstance(value, str) and bool(value)


def _with_currencies(balances: list[Any], endpoint: str) -> list[dict[str, Any]]:
    """A cash amount without its currency cannot be shown: guessing USD would mislabel money."""
    for balance in balances:
        if not isinstance(balance, dict) or (
            balance.get("cash") is not None and not _has_currency(balance.get("currency"))
        ):
            raise MalformedResponse(
                f"SnapTrade answered {endpoint} with a cash balance without its currency",
                provider=PROVIDER,
                endpoint=endpoint,
            )
    return balances


def _body(response: Any, endpoint: str, expected: type) -> Any:
    body = getattr(response, "body", None)
    if not isinstance(body, expected):
        raise MalformedResponse(
            f"SnapTrade answered {endpoint} with {type(body).__name__}, "
            f"expected {expected.__name__}",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return body


# --- users ------------------------------------------------------------------------------


def user_secret_for(
    user_email: str, *, store: SecretStore | None = None, region_name: str | None = None
) -> str:
    from services.secret_store import snaptrade_user_secret_name

    if store is None:
        from services.composition import default_secret_store

        store = default_secret_store(region_name)
    return store.get(snaptrade_user_secret_name(user_email))


@with_snaptrade_retry("POST /snapTrade/registerUser")
def _register_user_with_retry(client: SnapTrade, user_id: str) -> dict[str, Any]:
    return _body(
        client.authentication.register_snap_trade_user(user_id=user_id),
        "/snapTrade/registerUser",
        dict,
    )


def register_snaptrade_user(user_email: str, client: SnapTrade) -> str:
    """Register the person with SnapTrade; returns the new user secret (store it at once)."""
    body = _register_user_with_retry(client, user_email)
    secret = body.get("userSecret")
    if not secret:
        raise MalformedResponse(
            "SnapTrade registerUser answer has no userSecret",
            provider=PROVIDER,
            endpoint="/snapTrade/registerUser",
        )
    return str(secret)


@with_snaptrade_retry("POST /snapTrade/login")
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
    return _body(
        client.authentication.login_snap_trade_user(
            user_id=user_id, user_secret=user_secret, **kwargs
        ),
        "/snapTrade/login",
        dict,
    )


# --- accounts, balances, positions, connections ----------------------------------------


@with_snaptrade_retry("GET /accounts")
def _list_user_accounts_with_retry(
    client: SnapTrade, user_id: str, user_secret: str
) -> list[dict[str, Any]]:
    accounts = _body(
        client.account_information.list_user_accounts(user_id=user_id, user_secret=user_secret),
        "/accounts",
        list,
    )
    return _with_ids(accounts, "/accounts", "an account")


@with_snaptrade_retry("GET /accounts/{id}/balances")
def _get_user_account_balance_with_retry(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str
) -> list[dict[str, Any]]:
    balances = _body(
        client.account_information.get_user_account_balance(
            account_id=account_id, user_id=user_id, user_secret=user_secret
        ),
        "/accounts/{id}/balances",
        list,
    )
    return _with_currencies(balances, "/accounts/{id}/balances")


@with_snaptrade_retry("GET /accounts/{id}/positions/all")
def _get_all_account_positions_with_retry(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str
) -> dict[str, Any]:
    """``{"results": [...], "data_freshness": {"as_of": ...}}`` for one account."""
    body = _body(
        client.account_information.get_all_account_positions(
            account_id=account_id, user_id=user_id, user_secret=user_secret
        ),
        "/accounts/{id}/positions/all",
        dict,
    )
    if not isinstance(body.get("results"), list):
        raise MalformedResponse(
            "SnapTrade positions/all answer has no results list",
            provider=PROVIDER,
            endpoint="/accounts/{id}/positions/all",
        )
    return body


@with_snaptrade_retry("GET /authorizations")
def _list_brokerage_authorizations_with_retry(
    client: SnapTrade, user_id: str, user_secret: str
) -> list[dict[str, Any]]:
    return _body(
        client.connections.list_brokerage_authorizations(user_id=user_id, user_secret=user_secret),
        "/authorizations",
        list,
    )


@with_snaptrade_retry("GET /authorizations/{id}")
def _detail_brokerage_authorization_with_retry(
    client: SnapTrade, user_id: str, user_secret: str, authorization_id: str
) -> dict[str, Any]:
    return _body(
        client.connections.detail_brokerage_authorization(
            authorization_id=authorization_id, user_id=user_id, user_secret=user_secret
        ),
        "/authorizations/{id}",
        dict,
    )


def _brokerage_name(authorization: dict[str, Any]) -> str:
    brokerage = authorization.get("brokerage") or {}
    return str(brokerage.get("display_name") or brokerage.get("name") or authorization.get("name"))


def list_snaptrade_connections(
    user_email: str, client: SnapTrade, *, user_secret: str | None = None
) -> list[dict[str, Any]]:
    """The user's brokerage authorizations: id, brokerage, type, disabled state."""
    secret = user_secret or user_secret_for(user_email)
    return [
        {
            "authorization_id": str(auth.get("id")),
            "brokerage_name": _brokerage_name(auth),
            "connection_type": auth.get("type"),
            "disabled": bool(auth.get("disabled")),
            "disabled_date": auth.get("disabled_date"),
        }
        for auth in _list_brokerage_authorizations_with_retry(client, user_email, secret)
    ]


def authorization_id_of(account: dict[str, Any]) -> str | None:
    """An account's brokerage authorization id; SnapTrade sends it as a dict or a plain id."""
    from snaptrade_broker_adapter import _extract_authorization_id

    return _extract_authorization_id(account.get("brokerage_authorization"))


def fetch_snaptrade_account(
    client: SnapTrade, user_id: str, user_secret: str, account: dict[str, Any]
) -> dict[str, Any]:
    """One account's positions (``/positions/all``) and cash (``/balances``)."""
    account_id = str(account.get("id"))
    positions = _get_all_account_positions_with_retry(client, user_id, user_secret, account_id)
    return {
        "account": account,
        "positions": positions["results"],
        "data_freshness": positions.get("data_freshness"),
        "balances": _get_user_account_balance_with_retry(client, user_id, user_secret, account_id),
    }


def fetch_snaptrade_holdings(
    user_email: str, client: SnapTrade, *, user_secret: str | None = None
) -> dict[str, Any]:
    """Every account with its positions (``/positions/all``) and cash (``/balances``).

    ``/accounts/{id}/holdings`` answers 410 Gone for apps registered after
    2026-05-11, so holdings are assembled from the two per-account calls.
    """
    secret = user_secret or user_secret_for(user_email)
    accounts = _list_user_accounts_with_retry(client, user_email, secret)
    return {
        "accounts": [
            fetch_snaptrade_account(client, user_email, secret, account) for account in accounts
        ]
    }


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _currency_code(value: Any, default: str = "USD") -> str:
    if isinstance(value, dict):
        return str(value.get("code") or default)
    if isinstance(value, str) and value:
        return value
    return default


def _security_type(position: dict[str, Any], instrument: dict[str, Any]) -> str:
    kind = str(instrument.get("kind") or "").lower()
    # SnapTrade flags money-market funds as cash-equivalent mutual funds.
    if kind == "mutualfund" and position.get("cash_equivalent"):
        return "money_market"
    return INSTRUMENT_KINDS.get(kind, "other")


def _account_fields(account: dict[str, Any]) -> dict[str, Any]:
    number = str(account.get("number") or "")
    meta = account.get("meta") or {}
    return {
        "account_id": str(account.get("id")),
        "account_name": account.get("name"),
        "account_type": (meta.get("type") if isinstance(meta, dict) else None)
        or account.get("raw_type"),
        "account_mask": number[-4:] if number else None,
    }


def normalize_snaptrade_holdings(
    holdings: dict[str, Any],
    *,
    user_email: str = "",
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """SnapTrade accounts/positions/balances to normalized positions; cash one row per currency."""
    positions: list[NormalizedPosition] = []
    for entry in holdings.get("accounts", []):
        account = entry.get("account") or {}
        institution = str(account.get("institution_name") or "Unknown")
        fields = _account_fields(account)
        sync = (account.get("sync_status") or {}).get("holdings") or {}
        freshness = entry.get("data_freshness") or {}
        as_of = (
            _parse_time(freshness.get("as_of"))
            or _parse_time(sync.get("last_successful_sync"))
            or fetched_at
        )
        for position in _iter_dicts(entry.get("positions"), "positions/all"):
            instrument = position.get("instrument")
            if not isinstance(instrument, dict):
                raise MalformedResponse(
                    "SnapTrade position without an instrument",
                    provider=PROVIDER,
                    endpoint="/accounts/{id}/positions/all",
                )
            quantity = _float(position.get("units"))
            if quantity is None:
                raise MalformedResponse(
                    "SnapTrade position without units",
                    provider=PROVIDER,
                    endpoint="/accounts/{id}/positions/all",
                )
            price = _float(position.get("price"))
            unit_cost = _float(position.get("cost_basis"))  # per share, per the spec
            positions.append(
                NormalizedPosition(
                    user_email=user_email,
                    provider=PROVIDER,
                    institution=institution,
                    ticker=instrument.get("symbol") or instrument.get("raw_symbol"),
                    name=instrument.get("description"),
                    security_type=_security_type(position, instrument),
                    quantity=quantity,
                    price=price,
                    market_value=round(quantity * price, 2) if price is not None else None,
                    cost_basis=round(quantity * unit_cost, 2) if unit_cost is not None else None,
                    currency=_currency_code(position.get("currency") or instrument.get("currency")),
                    as_of=as_of,
                    **fields,
                )
            )
        for balance in _iter_dicts(entry.get("balances"), "balances"):
            amount = _float(balance.get("cash"))
            if amount is None:
                continue
            currency = _currency_code(balance.get("currency"))
            positions.append(
                NormalizedPosition(
                    user_email=user_email,
                    provider=PROVIDER,
                    institution=institution,
                    ticker=None,
                    name=f"Cash ({currency})",
                    security_type="cash",
                    quantity=round(amount, 2),
                    price=1.0,
                    market_value=round(amount, 2),
                    cost_basis=None,
                    currency=currency,
                    as_of=as_of,
                    **fields,
                )
            )
    return positions


def _iter_dicts(value: Any, what: str) -> Iterable[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedResponse(
            f"SnapTrade {what} answer is not a list of objects", provider=PROVIDER, endpoint=what
        )
    return value


def load_snaptrade_positions(
    user_email: str,
    client: SnapTrade,
    *,
    user_secret: str | None = None,
    fetched_at: datetime | None = None,
) -> list[NormalizedPosition]:
    """Fetch and normalize every SnapTrade account of the user."""
    raw = fetch_snaptrade_holdings(user_email, client, user_secret=user_secret)
    return normalize_snaptrade_holdings(
        raw, user_email=user_email, fetched_at=fetched_at or datetime.now(UTC)
    )


# --- symbol search and connection health -----------------------------------------------

# The health check's trading probe: a symbol search is read-only at the broker,
# yet answers 403 1020 / 1066 when the app or the connection may not trade.
HEALTH_PROBE_SYMBOL = "AAPL"


@with_snaptrade_retry("POST /accounts/{id}/symbols")
def _symbol_search_user_account_with_retry(
    client: SnapTrade, user_id: str, user_secret: str, account_id: str, substring: str
) -> list[dict[str, Any]]:
    """Universal symbols matching ``substring`` that this account's brokerage supports."""
    symbols = _body(
        client.reference_data.symbol_search_user_account(
            account_id=account_id, substring=substring, user_id=user_id, user_secret=user_secret
        ),
        "/accounts/{id}/symbols",
        list,
    )
    return _with_ids(symbols, "/accounts/{id}/symbols", "a symbol")


def check_snaptrade_connection_health(
    user_email: str,
    client: SnapTrade,
    probe_trading: bool = False,
    *,
    user_secret: str | None = None,
) -> list[dict[str, Any]]:
    """One row per brokerage authorization of the user: its type, state, and what works.

    Passive by default: accounts, the authorization's detail and one balance
    read per authorization. ``probe_trading=True`` adds one symbol search per
    trade connection that is not disabled. A disabled connection is not called
    beyond its detail (calls on a broken connection can get it disabled for good).

    Each row has exactly: ``authorization_id``, ``brokerage_name``,
    ``connection_type`` ("read"/"trade"; None when the detail call failed),
    ``disabled``, ``disabled_date``, ``account_ids``, ``data_ok``,
    ``trading_ok`` (None unless probed) and ``trading_error``: why trading
    does not work, or, when the connection itself could not be checked, why not.
    An error on one authorization stays in its row; failing to list the
    accounts at all raises (an error is not "no connections").
    """
    from snaptrade_broker_adapter import _extract_authorization_id

    secret = user_secret or user_secret_for(user_email)
    accounts = _list_user_accounts_with_retry(client, user_email, secret)
    by_authorization: dict[str, list[dict[str, Any]]] = {}
    for account in accounts:
        authorization_id = _extract_authorization_id(account.get("brokerage_authorization"))
        if authorization_id is None:
            log.warning("SnapTrade account %s has no brokerage authorization", account.get("id"))
            continue
        by_authorization.setdefault(authorization_id, []).append(account)
    return [
        _authorization_health(client, user_email, secret, authorization_id, owned, probe_trading)
        for authorization_id, owned in by_authorization.items()
    ]


def _authorization_health(
    client: SnapTrade,
    user_id: str,
    user_secret: str,
    authorization_id: str,
    accounts: list[dict[str, Any]],
    probe_trading: bool,
) -> dict[str, Any]:
    from snaptrade_broker_adapter import _map_snaptrade_trading_error

    first_account_id = str(accounts[0].get("id"))
    row: dict[str, Any] = {
        "authorization_id": authorization_id,
        "brokerage_name": str(accounts[0].get("institution_name") or "Unknown"),
        "connection_type": None,
        "disabled": False,
        "disabled_date": None,
        "account_ids": [str(a.get("id")) for a in accounts],
        "data_ok": False,
        "trading_ok": None,
        "trading_error": None,
    }

    def explain(error: ProviderError) -> str:
        return _map_snaptrade_trading_error(
            error, row["brokerage_name"], authorization_id=authorization_id
        ).message

    try:
        detail = _detail_brokerage_authorization_with_retry(
            client, user_id, user_secret, authorization_id
        )
    except ProviderError as exc:
        row["disabled"] = isinstance(exc, ConnectionDisabled)
        row["trading_error"] = f"connection check failed: {explain(exc)}"
        return row
    if detail.get("brokerage") or detail.get("name"):
        row["brokerage_name"] = _brokerage_name(detail)
    row["connection_type"] = detail.get("type")
    row["disabled"] = bool(detail.get("disabled"))
    row["disabled_date"] = detail.get("disabled_date")
    if row["disabled"]:
        return row
    try:
        _get_user_account_balance_with_retry(client, user_id, user_secret, first_account_id)
        row["data_ok"] = True
    except ProviderError as exc:
        if isinstance(exc, ConnectionDisabled):
            row["disabled"] = True
            row["trading_error"] = explain(exc)
            return row
        row["trading_error"] = f"data check failed: {explain(exc)}"
    if probe_trading and row["connection_type"] == "trade":
        try:
            _symbol_search_user_account_with_retry(
                client, user_id, user_secret, first_account_id, HEALTH_PROBE_SYMBOL
            )
            row["trading_ok"] = True
        except ProviderError as exc:
            row["trading_ok"] = False
            row["trading_error"] = explain(exc)
            # A disabled connection answers 3003 on any call: record it as disabled.
            row["disabled"] = isinstance(exc, ConnectionDisabled)
    return row
