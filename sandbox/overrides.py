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

Layout in the state: ``state["overrides"]["units"][account_key][ticker] = units``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from sandbox.data import ALL_ACCOUNTS, AccountTemplate, Holding

ACCOUNTS: dict[str, AccountTemplate] = {a.key: a for a in ALL_ACCOUNTS}


def current_account(state: dict[str, Any], template: AccountTemplate) -> AccountTemplate:
    """``template`` with the state's units overrides applied.

    A holding set to 0 units is left out: the position is gone, as a sold-out
    position is gone from both providers' answers. Everything computed from
    the holdings (values, account totals) follows from the returned template.
    """
    overrides = _units_overrides(state).get(template.key)
    if not overrides:
        return template
    holdings: list[Holding] = []
    for holding in template.holdings:
        units = overrides.get(holding.ticker, holding.quantity)
        if units == 0:
            continue
        if units != holding.quantity:
            # Keep the average cost per unit: SnapTrade reports cost per unit and
            # Plaid the total, so scaling the total keeps the two telling one story.
            cost_basis = holding.cost_basis * units / holding.quantity
            holding = replace(holding, quantity=units, cost_basis=cost_basis)
        holdings.append(holding)
    return replace(template, holdings=tuple(holdings))


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
