"""The Python handle on one emulator: :class:`Controls` checks endpoint keys and
steers the switches, holds and recorder, the connection switches and holding
overrides of the shared state, the webhooks it sends, and reads that state out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sandbox import activity, overrides
from sandbox.faults.holds import Hold, Holds
from sandbox.faults.recorder import RecordedRequest, Recorder
from sandbox.faults.rules import ALL_ENDPOINTS, FaultRule, FaultSwitches
from sandbox.hostile import HostileTexts
from sandbox.plaid.api import PlaidApi
from sandbox.snaptrade.api import SnapTradeApi
from sandbox.state import StateStore
from sandbox.webhooks import WebhookDelivery


class Controls:
    """Python handle on one emulator's faults, latency, holds, counters, switches and state."""

    def __init__(
        self,
        plaid: PlaidApi,
        snaptrade: SnapTradeApi,
        store: StateStore,
        clock: Callable[[], float],
    ) -> None:
        self._plaid = plaid
        self._snaptrade = snaptrade
        self._store = store
        self._clock = clock
        self._endpoints = frozenset(
            f"{api.provider} {route.template}" for api in (plaid, snaptrade) for route in api.routes
        )
        self._switches = FaultSwitches()
        self._holds = Holds()
        self._recorder = Recorder()
        # Hostile text in what the providers write (sandbox.hostile): set, read, rewrite.
        self.hostile = HostileTexts()

    @property
    def endpoints(self) -> frozenset[str]:
        """Every endpoint key this emulator serves."""
        return self._endpoints

    # --- latency ------------------------------------------------------------------

    def set_latency(self, endpoint: str, seconds: float) -> None:
        """Delay every answer of ``endpoint`` ("*" = all) by ``seconds`` (0 removes it)."""
        self._check_endpoint(endpoint)
        self._switches.set_latency(endpoint, seconds)

    def latency_for(self, endpoint: str) -> float:
        return self._switches.latency_for(endpoint)

    # --- faults ---------------------------------------------------------------------

    def fail(
        self,
        endpoint: str,
        fault: str,
        times: int | None = None,
        retry_after: float | None = None,
        *,
        subject: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls (None = all until cleared) with ``fault``.

        ``subject`` narrows the fault to calls about one access token (Plaid) or
        one account / authorization id (SnapTrade). ``retry_after`` sets the
        Retry-After header of a SnapTrade "429" (default 1 second).
        """
        self._check_endpoint(endpoint)
        self._switches.fail(endpoint, fault, times, retry_after, subject)

    def take_fault(self, endpoint: str, subject: str | None) -> FaultRule | None:
        """The fault this call must answer with, if any (uses up one of its ``times``)."""
        return self._switches.take(endpoint, subject)

    def clear(self) -> None:
        """Remove every fault, latency, hold and hostile text, webhook delivery faults included
        (a webhook held by "reorder" is sent now); call counts and deliveries are kept."""
        self._switches.clear()
        self.hostile.clear()
        self.release()
        self._plaid.webhooks.outbox.clear_faults()

    # --- holds ------------------------------------------------------------------------

    def hold(self, endpoint: str) -> Hold:
        """Park every request of ``endpoint`` ("*" = all) at the emulator until released.

        A parked request has been received and counted (``calls``, ``requests``)
        but is not answered until :meth:`release` (or ``HOLD_LIMIT_SECONDS``).
        Holding an endpoint that is already held keeps the same switch.
        """
        self._check_endpoint(endpoint)
        return self._holds.hold(endpoint)

    def release(self, endpoint: str | None = None) -> int:
        """Lift the hold on ``endpoint`` (None: every hold); returns the requests it let go."""
        if endpoint is not None:
            self._check_endpoint(endpoint)
        return self._holds.release(endpoint)

    def held(self, endpoint: str | None = None) -> int:
        """Requests parked right now at ``endpoint`` (None or "*": at any endpoint)."""
        if endpoint is not None:
            self._check_endpoint(endpoint)
        return self._holds.held(endpoint)

    def wait_until_held(self, endpoint: str, count: int = 1, timeout: float = 10.0) -> int:
        """Block until at least ``count`` requests are parked at ``endpoint`` (or "*").

        Returns how many are parked; raises TimeoutError when fewer are after
        ``timeout`` seconds (the operation under test never reached the emulator).
        """
        self._check_endpoint(endpoint)
        return self._holds.wait_until_held(endpoint, count, timeout)

    def park_if_held(self, endpoint: str) -> None:
        """Called by the server for each request: wait here while ``endpoint`` is held."""
        self._holds.park_if_held(endpoint)

    def close(self) -> None:
        """The server is stopping: release every held request and hold nothing from now on."""
        self._holds.close()

    # --- counters and the request recorder ------------------------------------------

    def record_call(self, endpoint: str, subject: str | None) -> None:
        self._recorder.record_call(endpoint, subject)

    def calls(self, endpoint: str | None = None, subject: str | None = None) -> int:
        """Calls received (faulted ones included); None matches any endpoint / subject."""
        return self._recorder.calls(endpoint, subject)

    def calls_by_subject(self, endpoint: str) -> dict[str | None, int]:
        """Calls of one endpoint per subject (access token, account or authorization id)."""
        return self._recorder.calls_by_subject(endpoint)

    def reset_counts(self) -> None:
        """Forget the call counts, the recorded requests and the webhook deliveries."""
        self._recorder.reset()
        self._plaid.webhooks.outbox.forget()

    def record_request(
        self,
        endpoint: str,
        method: str,
        *,
        path_params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        body_is_json: bool,
        latency: float = 0.0,
    ) -> None:
        self._recorder.record_request(
            endpoint,
            method,
            path_params=path_params,
            query=query,
            body=body,
            body_is_json=body_is_json,
            latency=latency,
        )

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        """The API requests received (the last RECORDED_REQUESTS), oldest first."""
        return self._recorder.requests(endpoint)

    # --- shared-state switches ------------------------------------------------------

    def disable_connection(self, authorization_id: str, disabled: bool = True) -> None:
        """Mark a SnapTrade connection disabled (its account reads answer 402 code 3003)."""
        self._snaptrade.set_connection_disabled(authorization_id, disabled, self._clock())

    def set_trading_permission(self, authorization_id: str, allowed: bool) -> None:
        """Whether trading through this connection is allowed (else 403 code 1020)."""
        self._snaptrade.set_trading_permission(authorization_id, allowed)

    def set_units(self, account_key: str, ticker: str, units: float) -> None:
        """Make a seeded holding ``units`` large on every provider serving the account.

        ``account_key`` is a key of ``data.PLAID_ACCOUNT_IDS`` / ``data.SNAPTRADE_ACCOUNT_IDS``
        ("ibkr-individual", ...). 0 removes the position from the answers. A ValueError
        names the known accounts or tickers when either is unknown.
        """
        with self._store.transaction() as state:
            overrides.set_units(state, account_key, ticker, units)
        self._holdings_changed(account_key)

    def set_description(self, ticker: str, text: str) -> None:
        """Make both providers call the seeded security ``ticker`` ``text``, as sent.

        Plaid's security ``name`` and SnapTrade's ``description`` (positions and symbol
        search) carry it, markup, new lines and all: how a test shows what the app does with
        hostile provider text. A ValueError when no seeded holding has that ticker.
        """
        with self._store.transaction() as state:
            overrides.set_description(state, ticker, text)

    def set_cost_basis(self, account_key: str, ticker: str, cost_basis: float | None) -> None:
        """Make both providers report ``cost_basis`` (total, in the holding's currency) for
        a seeded holding; None sends none at all, as a broker that does not know it."""
        with self._store.transaction() as state:
            overrides.set_cost_basis(state, account_key, ticker, cost_basis)
        self._holdings_changed(account_key)

    def set_cash(self, account_key: str, currency: str, amount: float) -> None:
        """Give an account a cash balance in ``currency`` on every provider serving it
        (0 removes it); any three-letter code, so a test can use one without a rate."""
        with self._store.transaction() as state:
            overrides.set_cash(state, account_key, currency, amount)
        self._holdings_changed(account_key)

    def correct_activity(
        self,
        account_key: str,
        activity_id: str,
        *,
        amount: float | None = None,
        new_id: str | None = None,
        trade_date: date | None = None,
    ) -> None:
        """Make both providers serve an activity with ``amount`` (signed: positive = cash
        into the account), under ``new_id`` and/or on ``trade_date``, as a provider
        correcting it would.

        ``activity_id`` is an id :meth:`list_activities` returns today; a ValueError when
        the account serves no such activity, ``new_id`` is taken or ``trade_date`` is
        outside the served history.
        """
        with self._store.transaction() as state:
            activity.correct_activity(
                state,
                account_key,
                activity_id,
                self._today(),
                amount=amount,
                new_id=new_id,
                trade_date=trade_date,
            )
        # A correction is the old transaction cancelled and a new one (Plaid's counts).
        self._plaid.webhooks.transactions_changed(account_key, self._clock(), new=1, cancelled=1)
        self._snaptrade.webhooks.transactions_changed(account_key, self._clock())

    def remove_activity(self, account_key: str, activity_id: str) -> None:
        """Make an activity vanish from the account's history on every provider."""
        with self._store.transaction() as state:
            activity.remove_activity(state, account_key, activity_id, self._today())
        self._plaid.webhooks.transactions_changed(account_key, self._clock(), new=0, cancelled=1)

    def repeat_activity(self, account_key: str, activity_id: str) -> None:
        """Make both providers send an activity twice in every answer (the same id twice)."""
        with self._store.transaction() as state:
            activity.repeat_activity(state, account_key, activity_id, self._today())

    def list_activities(self, account_key: str) -> list[activity.Activity]:
        """The account's activity history as both providers serve it now, oldest first."""
        return activity.served_activities(self._store.read(), account_key, self._today())

    def _today(self) -> date:
        return activity.today_of(self._clock())

    def complete_link(self, link_token: str, institution_slug: str) -> str | None:
        """Act as the person finishing Plaid Hosted Link; returns the public token."""
        return self._plaid.complete_link(link_token, institution_slug, self._clock())

    def complete_connection(self, session_id: str, brokerage_slug: str) -> str:
        """Act as the person finishing the SnapTrade portal; returns the authorization id."""
        return self._snaptrade.complete_connection(session_id, brokerage_slug, self._clock())

    # --- webhooks (sent only to URLs a test or the app configured) ------------------------

    def set_snaptrade_webhook_url(self, url: str | None) -> None:
        """SnapTrade's dashboard webhook URL for this emulator (None: send none)."""
        self._snaptrade.webhooks.set_url(url)

    def set_plaid_webhook_url(self, url: str | None, access_token: str | None = None) -> int:
        """Give one live Item (None: every one, the seeded demo Items included) the webhook
        URL a link token would have; sends nothing (``/item/webhook/update`` does)."""
        return self._plaid.webhooks.set_item_urls(url, access_token)

    def rotate_plaid_webhook_key(self) -> str:
        """Sign Plaid webhooks with a new key from now; the old one is still served, with
        ``expired_at`` set. Returns the new kid."""
        return self._plaid.webhooks.keys.rotate(self._clock())

    def fire_plaid_webhook(
        self, access_token: str, webhook_code: str, webhook_type: str | None = None
    ) -> None:
        """What ``/sandbox/item/fire_webhook`` sends, with the codes the SDK will not send
        (PENDING_EXPIRATION, HISTORICAL_UPDATE); ValueError when Plaid would refuse it."""
        self._plaid.webhooks.fire_for_token(access_token, webhook_code, webhook_type, self._clock())

    def fire_snaptrade_webhook(
        self,
        event_type: str,
        *,
        account_key: str | None = None,
        connection: str | None = None,
        user_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Send SnapTrade's ``event_type`` (nothing in the state changes); ``connection`` is
        an authorization id or brokerage slug. Returns how many webhooks were queued."""
        return self._snaptrade.webhooks.fire(
            event_type,
            self._clock(),
            account_key=account_key,
            connection=connection,
            user_id=user_id,
            details=details,
        )

    def webhook_fault(self, kind: str, times: int = 1, *, provider: str | None = None) -> None:
        """Apply a delivery fault to the next ``times`` webhooks (of ``provider``): "late",
        "duplicate", "reorder", "forged" or "unsigned" (see ``sandbox.webhooks``)."""
        self._plaid.webhooks.outbox.add_fault(kind, times, provider)

    def webhook_deliveries(self, provider: str | None = None) -> list[WebhookDelivery]:
        """Every webhook delivery attempted so far, oldest first."""
        return self._plaid.webhooks.outbox.deliveries(provider)

    def wait_for_webhooks(self, count: int, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Block until ``count`` deliveries have been attempted (TimeoutError after
        ``timeout`` seconds); returns every delivery so far."""
        return self._plaid.webhooks.outbox.wait_for(count, timeout)

    def _holdings_changed(self, account_key: str) -> None:
        self._plaid.webhooks.holdings_changed(account_key, self._clock())
        self._snaptrade.webhooks.holdings_changed(account_key, self._clock())

    # --- read-outs of the shared state (copies: changing them changes nothing) ------

    def trading_allowed(self, authorization_id: str) -> bool:
        """Whether this SnapTrade connection may trade now (else trades answer an error).

        False when it is disabled (3003), read-only (1066) or its trading
        permission is off (1020), as the trading endpoints decide.
        """
        auth = self.snaptrade_authorization(authorization_id)
        if auth is None:
            raise KeyError(f"no SnapTrade connection {authorization_id!r}")
        return not auth["disabled"] and auth["type"] == "trade" and bool(auth["trading_allowed"])

    def units(self, account_key: str, ticker: str) -> float:
        """A holding's units now: the :meth:`set_units` override, else the seeded quantity."""
        return overrides.units(self._store.read(), account_key, ticker)

    def snaptrade_authorization(self, authorization_id: str) -> dict[str, Any] | None:
        """A SnapTrade connection as stored (type, disabled, trading_allowed, ...), or None."""
        return self._read("snaptrade", "authorizations", authorization_id)

    def snaptrade_user(self, user_id: str) -> dict[str, Any] | None:
        """A registered SnapTrade user (``user_secret``, ``created_at``), or None."""
        return self._read("snaptrade", "users", user_id)

    def snaptrade_portal_session(self, session_id: str) -> dict[str, Any] | None:
        """An unfinished connection-portal session (connection_type, reconnect, ...), or None."""
        return self._read("snaptrade", "portal_sessions", session_id)

    def plaid_link_token(self, link_token: str) -> dict[str, Any] | None:
        """What a Plaid link token was created with (products, redirect, update mode), or None."""
        return self._read("plaid", "link_tokens", link_token)

    def _read(self, provider: str, collection: str, key: str) -> dict[str, Any] | None:
        # StateStore.read() hands out a private copy of the state.
        return self._store.read()[provider][collection].get(key)

    def reset_state(self) -> None:
        """Back to the seeded demo data, overrides dropped (for every process sharing the state)."""
        self._store.reset()

    def _check_endpoint(self, endpoint: str) -> None:
        if endpoint != ALL_ENDPOINTS and endpoint not in self._endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(self._endpoints)}")
