"""Trading: validation before any order impact, bound previews, at-most-once execution, audit.

Real SnapTrade SDK over loopback against the emulator; the emulator's counters
show which calls were made. Time is the injected clock; DB behaviour is checked
on SQLite and Postgres.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import (
    Conflict,
    ConnectionDisabled,
    InvalidInput,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    TradingNotPermitted,
)
from sandbox import data, demo
from services.models import TradeOrder, TradePreview
from snaptrade_broker_adapter import MAPPED_TRADING_FAILURES, _map_snaptrade_trading_error
from tests.conftest import make_services

IBKR_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["interactive-brokers"]
SCHWAB_AUTH = data.SNAPTRADE_AUTHORIZATION_IDS["charles-schwab"]
IBKR = data.SNAPTRADE_ACCOUNT_IDS["ibkr-individual"]
SCHWAB = data.SNAPTRADE_ACCOUNT_IDS["schwab-individual"]
IMPACT = "snaptrade /trade/impact"
PLACE = "snaptrade /trade/{tradeId}"
SYMBOLS = "snaptrade /accounts/{accountId}/symbols"


def seeded(ticker: str) -> data.Holding:
    """A holding as the emulator serves it: expected prices are read, never copied."""
    holding = data.holding_by_ticker(ticker)
    assert holding is not None, ticker
    return holding


SCHB = seeded("SCHB")  # held in the Schwab account the previews use
AAPL = seeded("AAPL")  # held at Merrill Lynch only
MESSAGE_1020 = (
    "SnapTrade trading permissions not enabled for Interactive Brokers. Error code 1020 — "
    "contact SnapTrade support to enable app-level trading."
)


@pytest.fixture
def trading_services(tmp_path: Path, database_url: str, emulator: Any, clock: Any) -> Any:
    """The service layer with TRADING_ENABLED=true, on SQLite and on Postgres."""
    built = make_services(tmp_path, database_url, emulator, clock, TRADING_ENABLED="true")
    yield built
    built.close()


def confirmed(trading: Any, *arguments: Any, **options: Any) -> str:
    """Preview an order and confirm it as the person would on the trades page."""
    preview_id = str(trading.preview_order(*arguments, **options)["preview_id"])
    trading.confirm(preview_id, via="web")
    return preview_id


# --- error messages ---------------------------------------------------------------------


# The two shapes of a SnapTrade error body: real answers say ``detail`` and ``code``;
# SnapTrade's spec names them ``default_detail`` and ``default_code``. Both are read.
BODY_SHAPES = ["answer", "spec"]


def api_exception(
    status: int,
    code: str | None,
    detail: str,
    retry_after: str | None = None,
    *,
    shape: str = "answer",
):
    from snaptrade_client import ApiException

    exc = ApiException(status=status, reason="error")
    if shape == "answer":
        exc.body = {"detail": detail, "status_code": status}
        if code is not None:
            exc.body["code"] = code
    else:
        exc.body = {"default_detail": detail}
        if code is not None:
            exc.body["default_code"] = code
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


# Every SnapTrade failure the adapter maps, with what its message must say.
LISTED_FAILURES = [
    ("1020", 403, "1020", "Trading is not enabled for this client.", None, TradingNotPermitted),
    ("1066", 403, "1066", "You do not have permission.", None, TradingNotPermitted),
    ("3003", 402, "3003", "The connection is disabled.", None, ConnectionDisabled),
    ("429", 429, "0000", "Request was throttled.", "7", RateLimited),
    ("410", 410, None, "Gone", None, ProviderRejected),
    ("expired_trade", 400, "0000", "Trade 1 has expired; request a new impact", None, None),
]
EXPECTED_TEXT = {
    "1020": MESSAGE_1020,
    "1066": "no permission (error code 1066)",
    "3003": "reconnect it through the SnapTrade connection portal",
    "429": "retry after 7 seconds",
    "410": "retired the endpoint",
    "expired_trade": "expired at SnapTrade",
}


def test_every_listed_failure_has_a_test() -> None:
    assert {name for name, *_ in LISTED_FAILURES} == set(MAPPED_TRADING_FAILURES)


@pytest.mark.parametrize("shape", BODY_SHAPES)
@pytest.mark.parametrize(
    ("name", "status", "code", "detail", "retry_after", "error_class"), LISTED_FAILURES
)
def test_each_listed_snaptrade_failure_gets_its_own_message_in_either_body_shape(
    name: str,
    status: int,
    code: str | None,
    detail: str,
    retry_after: str | None,
    error_class: type | None,
    shape: str,
) -> None:
    error = _map_snaptrade_trading_error(
        api_exception(status, code, detail, retry_after, shape=shape),
        "Interactive Brokers",
        authorization_id=IBKR_AUTH,
        endpoint="POST /trade/impact",
    )
    assert EXPECTED_TEXT[name] in error.message
    if name == "1020":
        assert error.message == MESSAGE_1020
    if error_class is not None:
        assert type(error) is error_class
    # An unmapped code falls through to the generic "failed (HTTP ..., code ...)" text.
    assert "failed (HTTP" not in error.message
    if name in ("3003", "1066"):
        assert IBKR_AUTH in error.message


def test_any_other_failure_names_the_http_status_and_the_code() -> None:
    error = _map_snaptrade_trading_error(
        api_exception(400, "4242", "Something odd"), "Charles Schwab", endpoint="place order"
    )
    assert "HTTP 400" in error.message and "code 4242" in error.message
    assert "Charles Schwab" in error.message


# --- preview ------------------------------------------------------------------------------


def test_a_schwab_preview_is_stored_bound_and_expiring(
    trading_services: Any, emulator: Any
) -> None:
    preview = trading_services.trading.preview_order(SCHWAB, "SCHB", "BUY", 2)
    assert preview["status"] == "previewed"
    assert preview["expires_in_seconds"] == 120
    assert preview["order"] == {
        "account_id": SCHWAB,
        "account_name": f"{data.CHARLES_SCHWAB.name} {data.SCHWAB_INDIVIDUAL.name}",
        "brokerage": data.CHARLES_SCHWAB.name,
        "symbol": "SCHB",
        "description": SCHB.name,
        "side": "BUY",
        "quantity": 2.0,
        "order_type": "Market",
        "limit_price": None,
        "time_in_force": "Day",
        "currency": "USD",
    }
    # A Market BUY is valued at the seeded price plus MARKET_ORDER_BUFFER_PERCENT (5).
    assert preview["impact"]["market_price"] == SCHB.price
    assert preview["impact"]["estimated_price"] == pytest.approx(SCHB.price * 1.05)
    assert preview["impact"]["estimated_value"] == round(2 * SCHB.price * 1.05, 2)
    assert "plus 5% for a Market BUY" in preview["impact"]["value_basis"]
    assert preview["impact"]["commission"] == 0.0
    assert emulator.controls.calls(IMPACT) == 1
    assert emulator.controls.calls(PLACE) == 0
    with trading_services.engine.connect() as conn:
        row = conn.execute(select(TradePreview.__table__)).mappings().one()
    assert row["preview_id"] == preview["preview_id"] and len(row["preview_id"]) >= 32
    assert row["status"] == "previewed" and len(row["order_hash"]) == 64
    assert row["provider_trade_id"] and "trade_impacts" in row["provider_answer"]
    assert demo.SNAPTRADE_USER_SECRET not in json.dumps(dict(row), default=str)


def test_a_preview_lasts_at_most_snaptrades_five_minutes(
    tmp_path: Path, sqlite_url: str, emulator: Any, clock: Any
) -> None:
    services = make_services(tmp_path, sqlite_url, emulator, clock, PREVIEW_TTL_SECONDS="900")
    preview = services.trading.preview_order(SCHWAB, "V", "BUY", 1, "Limit", 270.5)
    assert preview["expires_in_seconds"] == 300


def test_fees_snaptrade_does_not_state_are_unknown_not_zero(
    services: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snaptrade_broker_adapter import SnapTradeBrokerAdapter

    real = SnapTradeBrokerAdapter.preview_order

    def without_fees(self: Any, **kwargs: Any) -> dict[str, Any]:
        impact = real(self, **kwargs)
        for entry in impact["trade_impacts"]:
            entry["estimated_commission"] = None
            entry.pop("forex_fees")
        return impact

    monkeypatch.setattr(SnapTradeBrokerAdapter, "preview_order", without_fees)
    preview = services.trading.preview_order(SCHWAB, "SCHB", "BUY", 1)
    assert preview["impact"]["commission"] == "unknown"
    assert preview["impact"]["fees"] == "unknown"
    assert services.trading.list_trades()[0]["impact"]["commission"] == "unknown"


def test_an_ibkr_preview_returns_the_1020_message_and_is_audited_as_refused(
    services: Any, emulator: Any
) -> None:
    with pytest.raises(TradingNotPermitted) as refused:
        services.trading.preview_order(IBKR, "SPY", "BUY", 1, "Limit", 500)
    assert refused.value.message == MESSAGE_1020
    # refused at the symbol search that validates the order: no order-impact call
    assert emulator.controls.calls("snaptrade /accounts/{accountId}/symbols") == 1
    assert emulator.controls.calls(IMPACT) == 0
    trades = services.trading.list_trades()
    assert trades[0]["status"] == "refused"
    assert trades[0]["error"] == MESSAGE_1020
    assert trades[0]["order"]["brokerage"] == "Interactive Brokers"


UNKNOWN_ACCOUNT = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("arguments", "error_class", "expected"),
    [
        ((UNKNOWN_ACCOUNT, "SCHB", "BUY", 1), NotFound, "no SnapTrade account"),
        (("not-an-account", "SCHB", "BUY", 1), InvalidInput, "is not a SnapTrade account id"),
        (("a" * 100_000, "SCHB", "BUY", 1), InvalidInput, "is not a SnapTrade account id"),
        ((SCHWAB, "SCHB", "BUY", 0), InvalidInput, "quantity must be a positive"),
        ((SCHWAB, "SCHB", "BUY", -3), InvalidInput, "quantity must be a positive"),
        ((SCHWAB, "SCHB", "BUY", float("nan")), InvalidInput, "finite"),
        ((SCHWAB, "SCHB", "BUY", float("inf")), InvalidInput, "finite"),
        ((SCHWAB, "SCHB", "BUY", True), InvalidInput, "quantity"),
        ((SCHWAB, "SCHB", "BUY", 1e9), InvalidInput, "(MAX_ORDER_QUANTITY)"),
        ((SCHWAB, "SCHB", "BUY", 1e-300), InvalidInput, "out of bounds: from 0.0001"),
        ((SCHWAB, "SCHB", "BUY", 1e15, "Limit", 1e-12), InvalidInput, "out of bounds"),
        ((SCHWAB, "SCHB", "BUY", 1, "Limit", 1e-12), InvalidInput, "limit_price 1e-12 is out"),
        ((SCHWAB, "SCHB", "BUY", 1000), InvalidInput, "above MAX_ORDER_VALUE"),
        ((SCHWAB, "COST", "BUY", 100, "Limit", 800.0), InvalidInput, "above MAX_ORDER_VALUE"),
        ((SCHWAB, "SCHB", "HOLD", 1), InvalidInput, "BUY or SELL"),
        ((SCHWAB, "SCHB", "BUY", 1, "Stop"), InvalidInput, "Market or Limit"),
        ((SCHWAB, "SCHB", "BUY", 1, "Limit"), InvalidInput, "needs a positive limit_price"),
        ((SCHWAB, "SCHB", "BUY", 1, "Limit", 0), InvalidInput, "limit_price must be"),
        ((SCHWAB, "SCHB", "BUY", 1, "Market", 60.0), InvalidInput, "only for Limit"),
        ((SCHWAB, "ZZZZ", "BUY", 1), NotFound, "no symbol 'ZZZZ'"),
        ((SCHWAB, "", "BUY", 1), InvalidInput, "ticker"),
        (
            (SCHWAB, "SCHB", "SELL", SCHB.quantity + 1, "Limit", 1.0),
            InvalidInput,
            f"the account holds {SCHB.quantity:g}",
        ),
        # AAPL is held at Merrill Lynch, not in this account.
        ((SCHWAB, "AAPL", "SELL", 1, "Limit", 180.0), InvalidInput, "cannot sell 1 AAPL"),
    ],
)
def test_bad_input_is_refused_clearly_before_any_order_impact(
    services: Any,
    emulator: Any,
    arguments: tuple[Any, ...],
    error_class: type,
    expected: str,
) -> None:
    with pytest.raises(error_class) as refused:
        services.trading.preview_order(*arguments)
    assert expected in refused.value.message
    assert emulator.controls.calls(IMPACT) == 0


def test_malformed_input_makes_no_provider_call_at_all(services: Any, emulator: Any) -> None:
    for arguments in [
        (SCHWAB, "SCHB", "BUY", float("nan")),
        (SCHWAB, "SCHB", "HOLD", 1),
        (SCHWAB, "SCHB", "BUY", 1, "Limit"),
    ]:
        with pytest.raises(InvalidInput):
            services.trading.preview_order(*arguments)
    assert emulator.controls.calls() == 0


def test_a_read_only_connection_cannot_preview(services: Any, emulator: Any) -> None:
    from snaptrade_loader import login_snaptrade_user

    client = services.snaptrade_client()
    session = login_snaptrade_user(
        client, demo.SNAPTRADE_USER_ID, demo.SNAPTRADE_USER_SECRET, connection_type="read"
    )
    read_auth = emulator.controls.complete_connection(session["sessionId"], "charles-schwab")
    account = next(
        a["id"]
        for a in client.account_information.list_user_accounts(
            user_id=demo.SNAPTRADE_USER_ID, user_secret=demo.SNAPTRADE_USER_SECRET
        ).body
        if a["brokerage_authorization"] == read_auth
    )
    with pytest.raises(TradingNotPermitted) as refused:
        services.trading.preview_order(account, "SCHB", "BUY", 1)
    assert "read-only" in refused.value.message and read_auth in refused.value.message
    assert emulator.controls.calls(IMPACT) == 0


def test_a_disabled_connection_cannot_preview_and_says_how_to_reconnect(
    services: Any, emulator: Any
) -> None:
    emulator.controls.disable_connection(SCHWAB_AUTH)
    with pytest.raises(ConnectionDisabled) as refused:
        services.trading.preview_order(SCHWAB, "SCHB", "BUY", 1)
    assert "error code 3003" in refused.value.message
    assert f"reconnect='{SCHWAB_AUTH}'" in refused.value.message
    assert emulator.controls.calls(IMPACT) == 0


def test_symbol_search_and_the_repl_helpers(services: Any, emulator: Any) -> None:
    from services.trade_execution_service import preview_snaptrade_order, search_snaptrade_symbol

    found = search_snaptrade_symbol(demo.DEMO_USER_EMAIL, SCHWAB, "AAPL", services=services)
    assert [s["symbol"] for s in found] == ["AAPL"]
    assert found[0]["currency"] == "USD"
    services.positions.get_all_positions()  # AAPL's last price comes from the Merrill rows
    preview = preview_snaptrade_order(
        demo.DEMO_USER_EMAIL, SCHWAB, "AAPL", "BUY", 1, "Market", services=services
    )
    assert preview["impact"]["market_price"] == AAPL.price
    assert preview["impact"]["price_source"] == "the positions cache"


def test_a_market_order_without_any_known_price_is_refused(services: Any, emulator: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.trading.preview_order(SCHWAB, "AAPL", "BUY", 1)
    assert "place a Limit order" in refused.value.message
    assert services.trading.list_trades()[0]["status"] == "refused"


# --- execute ------------------------------------------------------------------------------


def test_execute_is_refused_while_trading_is_disabled(services: Any, emulator: Any) -> None:
    preview = services.trading.preview_order(SCHWAB, "SCHB", "BUY", 1)
    assert preview["trading_enabled"] is False
    with pytest.raises(Conflict) as refused:
        services.trading.execute_order(preview["preview_id"])
    assert "TRADING_ENABLED=true" in refused.value.message
    assert "restart" in refused.value.message
    assert emulator.controls.calls(PLACE) == 0


def test_execute_order_from_a_repl_refuses_a_preview_nobody_confirmed(
    trading_services: Any, emulator: Any
) -> None:
    from services.trade_execution_service import preview_snaptrade_order

    email = trading_services.user_email
    preview = preview_snaptrade_order(email, SCHWAB, "SCHB", "BUY", 1, services=trading_services)
    trading = trading_services.trading_for(email)  # as a REPL reaches the service
    with pytest.raises(Conflict) as refused:
        trading.execute_order(preview["preview_id"])
    assert "has not been confirmed by the person" in refused.value.message
    assert f"confirm-trade {preview['preview_id']}" in refused.value.message
    assert emulator.controls.calls(PLACE) == 0
    trade = trading.list_trades()[0]
    assert trade["status"] == "previewed" and trade["requested_via"] == "repl"
    assert trade["confirmed_via"] is None


def test_execute_places_once_and_a_repeat_returns_the_recorded_order(
    trading_services: Any, emulator: Any
) -> None:
    trading = trading_services.trading
    preview = trading.preview_order(SCHWAB, "SCHB", "BUY", 2, requested_via="cli")
    trading.confirm(preview["preview_id"], via="cli")
    order = trading.execute_order(preview["preview_id"], requested_via="cli")
    assert order["status"] == "placed" and order["already_executed"] is False
    assert order["provider_status"] == "EXECUTED" and order["brokerage_order_id"]
    assert order["filled_quantity"] == 2.0
    again = trading.execute_order(preview["preview_id"])
    assert again["already_executed"] is True
    assert again["brokerage_order_id"] == order["brokerage_order_id"]
    assert emulator.controls.calls(PLACE) == 1
    trade = trading.list_trades()[0]
    assert trade["status"] == "executed" and trade["requested_via"] == "cli"
    assert trade["confirmed_via"] == "cli"
    assert trade["execution"]["brokerage_order_id"] == order["brokerage_order_id"]


def test_two_concurrent_executes_place_the_order_once(trading_services: Any, emulator: Any) -> None:
    trading = trading_services.trading
    preview_id = confirmed(trading, SCHWAB, "SCHB", "BUY", 1)
    outcomes: queue.Queue[Any] = queue.Queue()

    def execute() -> None:
        try:
            outcomes.put(trading.execute_order(preview_id))
        except Exception as exc:  # every outcome is checked below
            outcomes.put(exc)

    threads = [threading.Thread(target=execute) for _ in range(2)]
    with emulator.controls.hold(SYMBOLS) as validation, emulator.controls.hold(PLACE) as placing:
        for thread in threads:
            thread.start()
        # Both executes have loaded the preview as unused and are re-validating the order
        # (a symbol search) when they are let go together: both then try to claim it.
        validation.wait_until_held(2)
        validation.release()
        # One claim wins and its order is in flight at the broker, held there...
        placing.wait_until_held(1)
        # ...so the other execute is certain to be refused while the first is unfinished.
        try:
            refused = outcomes.get(timeout=15)
        except queue.Empty:
            pytest.fail(f"no execute was refused; {placing.held} placement(s) at the broker")
        assert isinstance(refused, Conflict), refused
        assert "will not be placed twice" in refused.message
        assert placing.held == 1  # the refused execute sent nothing to the broker
    placed = outcomes.get(timeout=30)
    for thread in threads:
        thread.join(timeout=30)
    assert isinstance(placed, dict), placed
    assert placed["status"] == "placed" and placed["already_executed"] is False
    assert emulator.controls.calls(PLACE) == 1
    again = trading.execute_order(preview_id)
    assert again["already_executed"] is True
    assert again["brokerage_order_id"] == placed["brokerage_order_id"]
    assert emulator.controls.calls(PLACE) == 1


def test_the_database_allows_one_order_per_preview(trading_services: Any) -> None:
    trading = trading_services.trading
    preview_id = confirmed(trading, SCHWAB, "SCHB", "BUY", 1)
    trading.execute_order(preview_id)
    with trading_services.engine.connect() as conn:
        user_id = conn.execute(select(TradePreview.user_id)).scalar_one()
    with pytest.raises(IntegrityError), trading_services.engine.begin() as conn:
        conn.execute(
            insert(TradeOrder).values(
                preview_id=preview_id,
                user_id=user_id,
                requested_via="test",
                status="placing",
                claimed_at=trading_services.clock(),
            )
        )


def test_an_expired_preview_is_refused(trading_services: Any, emulator: Any, clock: Any) -> None:
    trading = trading_services.trading
    preview = trading.preview_order(SCHWAB, "SCHB", "BUY", 1)
    trading.confirm(preview["preview_id"], via="web")
    clock.advance(seconds=120)
    with pytest.raises(Conflict) as refused:
        trading.execute_order(preview["preview_id"])
    assert "expired" in refused.value.message
    assert trading.list_trades()[0]["status"] == "expired"
    assert emulator.controls.calls(PLACE) == 0


@pytest.mark.parametrize(
    "preview_id",
    ["x" * 32, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "'; DROP TABLE trade_orders; --", ""],
)
def test_a_forged_preview_id_is_refused(
    trading_services: Any, emulator: Any, preview_id: str
) -> None:
    trading_services.trading.preview_order(SCHWAB, "SCHB", "BUY", 1)
    with pytest.raises(NotFound) as refused:
        trading_services.trading.execute_order(preview_id)
    assert "unknown preview_id" in refused.value.message
    assert emulator.controls.calls(PLACE) == 0


def test_a_preview_whose_placement_failed_cannot_be_reused(
    trading_services: Any, emulator: Any
) -> None:
    trading = trading_services.trading
    preview_id = confirmed(trading, SCHWAB, "SCHB", "BUY", 1)
    # the placement itself is refused (validation before it still passes)
    emulator.controls.fail(PLACE, "1020", times=1)
    with pytest.raises(TradingNotPermitted) as refused:
        trading.execute_order(preview_id)
    assert "Error code 1020" in refused.value.message
    with pytest.raises(Conflict) as reused:
        trading.execute_order(preview_id)
    assert "already used" in reused.value.message
    assert emulator.controls.calls(PLACE) == 1
    assert trading.list_trades()[0]["execution"]["status"] == "failed"


def test_an_order_that_no_longer_validates_is_not_placed(
    trading_services: Any, emulator: Any
) -> None:
    trading = trading_services.trading
    preview_id = confirmed(trading, SCHWAB, "SCHB", "BUY", 1)
    emulator.controls.disable_connection(SCHWAB_AUTH)
    with pytest.raises(ConnectionDisabled):
        trading.execute_order(preview_id)
    assert emulator.controls.calls(PLACE) == 0
    emulator.controls.disable_connection(SCHWAB_AUTH, False)
    assert trading.execute_order(preview_id)["status"] == "placed"


def test_a_preview_changed_after_the_fact_is_refused(trading_services: Any, emulator: Any) -> None:
    trading = trading_services.trading
    preview_id = confirmed(trading, SCHWAB, "SCHB", "BUY", 1)
    with trading_services.engine.begin() as conn:
        conn.execute(
            update(TradePreview).where(TradePreview.preview_id == preview_id).values(quantity=100)
        )
    with pytest.raises(Conflict) as refused:
        trading.execute_order(preview_id)
    assert "no longer matches" in refused.value.message
    assert emulator.controls.calls(PLACE) == 0


def test_an_unanswered_placement_is_recorded_unknown_and_never_retried(
    trading_services: Any, emulator: Any
) -> None:
    trading = trading_services.trading
    preview_id = confirmed(trading, SCHWAB, "SCHB", "BUY", 1)
    emulator.controls.fail(PLACE, "drop")
    with pytest.raises(ProviderUnavailable) as unknown:
        trading.execute_order(preview_id)
    assert "may or may not have been placed" in unknown.value.message
    emulator.controls.clear()
    with pytest.raises(Conflict) as again:
        trading.execute_order(preview_id)
    assert "never confirmed" in again.value.message
    assert emulator.controls.calls(PLACE) == 1


def test_list_trades_is_newest_first_and_validates_its_limit(
    trading_services: Any, clock: Any
) -> None:
    trading = trading_services.trading
    first = trading.preview_order(SCHWAB, "SCHB", "BUY", 1)["preview_id"]
    clock.advance(seconds=1)
    second = trading.preview_order(SCHWAB, "V", "BUY", 1, "Limit", 270.0)["preview_id"]
    trades = trading.list_trades(limit=5)
    assert [t["preview_id"] for t in trades] == [second, first]
    assert trades[0]["order"]["limit_price"] == 270.0
    with pytest.raises(InvalidInput):
        trading.list_trades(limit=0)


def test_another_persons_preview_id_is_unknown(trading_services: Any, emulator: Any) -> None:
    preview_id = confirmed(trading_services.trading, SCHWAB, "SCHB", "BUY", 1)
    someone_else = trading_services.trading_for("someone.else@example.com")
    for act in (someone_else.execute_order, someone_else.confirmation):
        with pytest.raises(NotFound):
            act(preview_id)
    with pytest.raises(NotFound):
        someone_else.confirm(preview_id, via="web")
    assert emulator.controls.calls(PLACE) == 0


def test_a_preview_id_never_reads_as_a_command_line_option() -> None:
    from services.trading.orders import PREVIEW_ID_SHAPE, new_preview_id

    # `confirm-trade <preview_id>`: an id starting with "-" would be taken for an option
    # (one in 64 URL-safe ids would), and the person could not confirm that order.
    ids = {new_preview_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(PREVIEW_ID_SHAPE.fullmatch(i) and not i.startswith("-") for i in ids)
