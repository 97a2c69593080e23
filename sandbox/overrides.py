"""Changes a test makes to the seeded portfolio, kept in the shared state.

``sandbox.data`` is the portfolio as seeded and never changes: every process
imports the same module, so a change there would be seen by one process only.
A test that needs the providers' data to move (a position sold at the broker,
a fill arriving between two syncs) sets an override in the shared state
instead: every emulator process sharing the state file sees it, and a state
reset drops it with everything else.

Both providers read an account through :func:`current_account`, so an account
served by both (Interactive Brokers) changes on both at once, as a real account
would; the app de-duplicates on exactly those quantities.

A test may also give a security another description (:func:`set_description`): what the
broker calls it, as Plaid's security ``name`` and SnapTrade's ``description`` (positions and
symbol search), so a test can show what the app does with odd or hostile provider text.

A test may also take a holding's cost basis away (:func:`set_cost_basis`: both providers
then send none, or a zero) or give an account cash in another currency (:func:`set_cash`),
to show what the app does with a gain it cannot know or a currency without a rate.

Layout in the state: ``state["overrides"]["units"][account_key][ticker] = units``,
``state["overrides"]["descriptions"][ticker] = text``,
``state["overrides"]["cost_basis"][account_key][ticker] = total or None`` and
``state["overrides"]["cash"][account_key][currency] = amount``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from sandbox.data import ALL_ACCOUNTS, AccountTemplate, Holding, holding_by_ticker

ACCOUNTS: dict[str, AccountTemplate] = {a.key: a for a in ALL_ACCOUNTS}
# The state is one JSON file read on every request: a description is bounded, if generously.
MAX_DESCRIPTION_CHARS = 100_000


def current_account(state: dict[str, Any], template: AccountTemplate) -> AccountTemplate:
    """``template`` with the state's units and description overrides applied.

    A holding set to 0 units is left out: the position is gone, as a sold-out
    position is gone from both providers' answers. Everything computed from
    the holdings (values, account totals) follows from the returned template.
    """
    overrides = _units_overrides(state).get(template.key)
    descriptions = _description_overrides(state)
    costs = _overrides(state, "cost_basis").get(template.key, {})
    cash = _overrides(state, "cash").get(template.key, {})
    if not overrides and not descriptions and not costs and not cash:
        return template
    holdings: list[Holding] = []
    for seeded in template.holdings:
        holding = described(state, seeded)
        units = (overrides or {}).get(holding.ticker, holding.quantity)
        if units == 0:
            continue
        if units != holding.quantity:
            # Keep the average cost per unit: SnapTrade reports cost per unit and
            # Plaid the total, so scaling the total keeps the two telling one story.
            cost_basis = (
                None
                if holding.cost_basis is None
                else holding.cost_basis * units / holding.quantity
            )
            holding = replace(holding, quantity=units, cost_basis=cost_basis)
        if holding.ticker in costs:
            holding = replace(holding, cost_basis=costs[holding.ticker])
        holdings.append(holding)
    balances = dict(template.cash) | cash
    return replace(
        template,
        holdings=tuple(holdings),
        cash=tuple((currency, amount) for currency, amount in balances.items() if amount),
    )


def described(state: dict[str, Any], holding: Holding) -> Holding:
    """``holding`` with the description a test set for its ticker, if any."""
    text = _description_overrides(state).get(holding.ticker)
    return holding if text is None else replace(holding, name=text)


def set_description(state: dict[str, Any], ticker: str, text: str) -> None:
    """Store ``text`` as what both providers call the seeded security ``ticker``."""
    if holding_by_ticker(ticker) is None:
        raise ValueError(f"no seeded holding of {ticker!r}")
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"a description is a string of at most {MAX_DESCRIPTION_CHARS} chars")
    state.setdefault("overrides", {}).setdefault("descriptions", {})[ticker] = text


def seeded_holding(account_key: str, ticker: str) -> Holding:
    """The seeded holding of ``ticker`` in ``account_key``; ValueError when there is none.

    Only seeded positions can be changed: a new ticker would need a name, a
    price and a listing the demo data does not have.
    """
    template = ACCOUNTS.get(account_key)
    if template is None:
        raise ValueError(f"unknown account {account_key!r}; known: {sorted(ACCOUNTS)}")
    for holding in template.holdings:
        if holding.ticker == ticker:
            return holding
    tickers = sorted(h.ticker for h in template.holdings)
    raise ValueError(f"account {account_key!r} holds no {ticker!r}; it holds: {tickers}")


def units(state: dict[str, Any], account_key: str, ticker: str) -> float:
    """The units of a holding now: the override if one is set, else the seeded quantity."""
    seeded = seeded_holding(account_key, ticker)
    return float(_units_overrides(state).get(account_key, {}).get(ticker, seeded.quantity))


def set_units(state: dict[str, Any], account_key: str, ticker: str, new_units: float) -> None:
    """Store ``new_units`` for a seeded holding (0: the position is gone)."""
    seeded_holding(account_key, ticker)
    # bool is an int to Python, but {"units": true} is a mistake, not 1 unit.
    if isinstance(new_units, bool) or not isinstance(new_units, int | float):
        raise ValueError(f"units must be a number, not {new_units!r}")
    # The state is JSON (no NaN or infinity), and the demo data has no short positions.
    if not math.isfinite(new_units) or new_units < 0:
        raise ValueError(f"units must be a finite number >= 0, not {new_units!r}")
    by_account = state.setdefault("overrides", {}).setdefault("units", {})
    by_account.setdefault(account_key, {})[ticker] = float(new_units)


def _units_overrides(state: dict[str, Any]) -> dict[str, dict[str, float]]:
    # A state file written before overrides existed has no "overrides" key.
    return state.get("overrides", {}).get("units", {})


def _description_overrides(state: dict[str, Any]) -> dict[str, str]:
    return state.get("overrides", {}).get("descriptions", {})


def set_cost_basis(
    state: dict[str, Any], account_key: str, ticker: str, cost_basis: float | None
) -> None:
    """Store the total cost basis both providers report for a seeded holding (None: none)."""
    seeded_holding(account_key, ticker)
    if cost_basis is not None and (
        isinstance(cost_basis, bool)
        or not isinstance(cost_basis, int | float)
        or not math.isfinite(cost_basis)
        or cost_basis < 0
    ):
        raise ValueError(f"a cost basis is a finite number >= 0 or None, not {cost_basis!r}")
    costs = state.setdefault("overrides", {}).setdefault("cost_basis", {})
    costs.setdefault(account_key, {})[ticker] = cost_basis


def set_cash(state: dict[str, Any], account_key: str, currency: str, amount: float) -> None:
    """Store a cash balance of ``amount`` in ``currency`` (0: none) in an account."""
    if account_key not in ACCOUNTS:
        raise ValueError(f"unknown account {account_key!r}; known: {sorted(ACCOUNTS)}")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"a currency is a three-letter code, not {currency!r}")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValueError(f"an amount must be a number, not {amount!r}")
    if not math.isfinite(amount):
        raise ValueError(f"an amount must be finite, not {amount!r}")
    cash = state.setdefault("overrides", {}).setdefault("cash", {})
    cash.setdefault(account_key, {})[currency.upper()] = float(amount)


def _overrides(state: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return state.get("overrides", {}).get(kind, {})
