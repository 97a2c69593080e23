"""Seeded demo portfolio served by the emulator.

The holdings describe real-world positions once, provider-neutrally; the Plaid
and SnapTrade modules each render them in their own format. Interactive Brokers
is reachable through both providers, so both must report the same tickers,
quantities and account number: the app de-duplicates on exactly that.

Every id is fixed so that two emulator processes (web app and MCP server) and
the tests agree on them. SnapTrade ids are UUIDs because the SnapTrade SDK
validates uuid-format parameters.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sandbox import demo

# Plaid security types; a money-market fund is a "mutual fund" that Plaid flags
# is_cash_equivalent, and SnapTrade reports as a cash-equivalent mutual fund.
Kind = Literal["equity", "etf", "mutual fund", "money market"]

PRICES_AS_OF = "2026-11-26"
PRICES_AS_OF_DATETIME = "2026-11-26T21:00:00Z"

# Fixed conversion used only for account totals that mix currencies.
USD_PER_UNIT = {"USD": 1.0, "EUR": 1.08}

CURRENCY_NAMES = {"USD": "US Dollar", "EUR": "Euro"}


def cash_in_usd(cash: tuple[tuple[str, float], ...]) -> float:
    """The account's cash in USD for its balance totals; a currency the demo has no fixed
    rate for (one a test added) is left out of them rather than counted at 1:1."""
    return sum(amount * USD_PER_UNIT.get(currency, 0.0) for currency, amount in cash)


_ID_NAMESPACE = uuid.UUID("6f1d3c0e-2b7a-4c55-9e1f-0a8b7c6d5e4f")


def stable_uuid(*parts: str) -> str:
    """A UUID that depends only on ``parts`` (same in every process)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


def stable_plaid_id(*parts: str) -> str:
    """A Plaid-looking opaque id (37 alphanumerics) that depends only on ``parts``."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789"
    number = int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest(), "big")
    chars = []
    for _ in range(37):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def demo_figi(ticker: str) -> str:
    """A made-up, FIGI-shaped identifier of a demo security (the same on both providers):
    "BBG" and nine characters from FIGI's alphabet, derived from the ticker alone."""
    alphabet = "BCDFGHJKLMNPQRSTVWXYZ0123456789"
    number = int.from_bytes(hashlib.sha256(f"figi/{ticker}".encode()).digest(), "big")
    chars = []
    for _ in range(9):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "BBG" + "".join(chars)


@dataclass(frozen=True)
class Holding:
    ticker: str
    name: str
    kind: Kind
    quantity: float
    price: float
    cost_basis: float | None  # total cost of the position, in its currency; None: unknown
    mic: str | None = None  # listing exchange; None for funds bought from the issuer
    currency: str = "USD"

    @property
    def value(self) -> float:
        return round(self.quantity * self.price, 2)

    @property
    def cash_equivalent(self) -> bool:
        return self.kind == "money market"


@dataclass(frozen=True)
class AccountTemplate:
    key: str  # stable name used to derive ids for re-linked copies
    name: str
    official_name: str
    number: str
    subtype: Literal["brokerage", "ira"]
    holdings: tuple[Holding, ...]
    cash: tuple[tuple[str, float], ...]  # (currency, amount)

    @property
    def mask(self) -> str:
        return self.number[-4:]

    def total_value_usd(self) -> float:
        securities = sum(h.value * USD_PER_UNIT.get(h.currency, 0.0) for h in self.holdings)
        return round(securities + cash_in_usd(self.cash), 2)


@dataclass(frozen=True)
class Institution:
    slug: str
    name: str
    url: str
    primary_color: str
    accounts: tuple[AccountTemplate, ...]
    plaid_institution_id: str | None  # None: not offered through Plaid
    snaptrade_brokerage_id: str | None  # None: not offered through SnapTrade


MERRILL_BROKERAGE = AccountTemplate(
    key="merrill-cma",
    name="CMA Brokerage",
    official_name="Merrill Cash Management Account",
    number="5WB48213",
    subtype="brokerage",
    holdings=(
        Holding("AAPL", "Apple Inc.", "equity", 120, 189.50, 14_250.00, "XNAS"),
        Holding("MSFT", "Microsoft Corporation", "equity", 45, 415.20, 12_870.00, "XNAS"),
        Holding("JNJ", "Johnson & Johnson", "equity", 60, 152.30, 9_420.00, "XNYS"),
        Holding("BRK.B", "Berkshire Hathaway Inc. Class B", "equity", 25, 408.75, 7_900.00, "XNYS"),
        Holding("KO", "The Coca-Cola Company", "equity", 150, 61.20, 7_650.00, "XNYS"),
        Holding("JPM", "JPMorgan Chase & Co.", "equity", 35, 198.40, 5_180.00, "XNYS"),
        Holding("VOO", "Vanguard S&P 500 ETF", "etf", 40, 478.10, 15_200.00, "ARCX"),
        Holding("QQQ", "Invesco QQQ Trust", "etf", 30, 437.60, 10_110.00, "XNAS"),
        Holding(
            "VTSAX",
            "Vanguard Total Stock Market Index Fund Admiral Shares",
            "mutual fund",
            210.532,
            128.45,
            22_300.00,
        ),
    ),
    cash=(("USD", 12_450.37),),
)

MERRILL_IRA = AccountTemplate(
    key="merrill-ira",
    name="Retirement IRA",
    official_name="Merrill Traditional IRA",
    number="5WB77301",
    subtype="ira",
    holdings=(
        Holding("VTI", "Vanguard Total Stock Market ETF", "etf", 85, 262.40, 17_850.00, "ARCX"),
        Holding("BND", "Vanguard Total Bond Market ETF", "etf", 120, 72.15, 8_940.00, "XNAS"),
        Holding("SCHD", "Schwab U.S. Dividend Equity ETF", "etf", 95, 78.30, 6_990.00, "ARCX"),
        Holding("PG", "The Procter & Gamble Company", "equity", 40, 165.80, 5_720.00, "XNYS"),
        Holding("NVDA", "NVIDIA Corporation", "equity", 18, 875.30, 4_100.00, "XNAS"),
        Holding("FXAIX", "Fidelity 500 Index Fund", "mutual fund", 150.25, 185.60, 21_400.00),
    ),
    cash=(("USD", 3_204.11),),
)

IBKR_INDIVIDUAL = AccountTemplate(
    key="ibkr-individual",
    name="Individual",
    official_name="Interactive Brokers Individual Margin Account",
    number="U7452190",
    subtype="brokerage",
    holdings=(
        Holding("AMZN", "Amazon.com, Inc.", "equity", 50, 178.25, 7_300.00, "XNAS"),
        Holding("GOOGL", "Alphabet Inc. Class A", "equity", 40, 152.80, 5_050.00, "XNAS"),
        Holding("TSLA", "Tesla, Inc.", "equity", 15, 242.10, 3_960.00, "XNAS"),
        Holding("ASML", "ASML Holding N.V.", "equity", 10, 945.00, 6_800.00, "XNAS"),
        Holding("SPY", "SPDR S&P 500 ETF Trust", "etf", 20, 512.40, 8_880.00, "ARCX"),
        Holding("VEA", "Vanguard FTSE Developed Markets ETF", "etf", 150, 49.85, 6_900.00, "ARCX"),
        Holding("IEF", "iShares 7-10 Year Treasury Bond ETF", "etf", 60, 94.20, 5_820.00, "XNAS"),
        Holding(
            "VMFXX",
            "Vanguard Federal Money Market Fund",
            "money market",
            5_000,
            1.00,
            5_000.00,
        ),
    ),
    cash=(("USD", 8_342.55), ("EUR", 2_150.00)),
)

SCHWAB_INDIVIDUAL = AccountTemplate(
    key="schwab-individual",
    name="Individual Brokerage",
    official_name="Schwab One Individual Brokerage Account",
    number="44179921",
    subtype="brokerage",
    holdings=(
        Holding("SCHW", "The Charles Schwab Corporation", "equity", 100, 72.40, 5_900.00, "XNYS"),
        Holding("V", "Visa Inc. Class A", "equity", 30, 275.60, 6_750.00, "XNYS"),
        Holding("HD", "The Home Depot, Inc.", "equity", 20, 362.10, 6_480.00, "XNYS"),
        Holding("COST", "Costco Wholesale Corporation", "equity", 12, 812.40, 6_150.00, "XNAS"),
        Holding("SCHB", "Schwab U.S. Broad Market ETF", "etf", 200, 60.85, 10_400.00, "ARCX"),
        Holding("SCHX", "Schwab U.S. Large-Cap ETF", "etf", 110, 63.10, 5_980.00, "ARCX"),
        Holding("SWPPX", "Schwab S&P 500 Index Fund", "mutual fund", 300.457, 82.30, 20_100.00),
        Holding(
            "SWVXX",
            "Schwab Value Advantage Money Fund",
            "money market",
            2_500,
            1.00,
            2_500.00,
        ),
    ),
    cash=(("USD", 1_875.20),),
)

MERRILL_LYNCH = Institution(
    slug="merrill-lynch",
    name="Merrill Lynch",
    url="https://www.ml.com",
    primary_color="#0060a9",
    accounts=(MERRILL_BROKERAGE, MERRILL_IRA),
    plaid_institution_id="ins_emu_merrill_lynch",
    snaptrade_brokerage_id=None,
)

INTERACTIVE_BROKERS = Institution(
    slug="interactive-brokers",
    name="Interactive Brokers",
    url="https://www.interactivebrokers.com",
    primary_color="#d81222",
    accounts=(IBKR_INDIVIDUAL,),
    plaid_institution_id="ins_emu_interactive_brokers",
    snaptrade_brokerage_id="a6b3d1f0-1c2e-4f7a-9b8d-2e4f6a8c0b11",
)

CHARLES_SCHWAB = Institution(
    slug="charles-schwab",
    name="Charles Schwab",
    url="https://www.schwab.com",
    primary_color="#00a0df",
    accounts=(SCHWAB_INDIVIDUAL,),
    plaid_institution_id=None,
    snaptrade_brokerage_id="c3e5a7b9-2d4f-4a6c-8e0b-3f5a7c9e1d22",
)

INSTITUTIONS: dict[str, Institution] = {
    i.slug: i for i in (MERRILL_LYNCH, INTERACTIVE_BROKERS, CHARLES_SCHWAB)
}
PLAID_INSTITUTIONS = {i.slug: i for i in INSTITUTIONS.values() if i.plaid_institution_id}
SNAPTRADE_BROKERAGES = {i.slug: i for i in INSTITUTIONS.values() if i.snaptrade_brokerage_id}

# SnapTrade's logo host (the one its spec's examples name). A logo URL on the emulator's
# own loopback address would fail the spec's ``url`` format, which refuses loopback and
# private hosts as Stoplight Prism does; the emulator serves no logos anyway.
SNAPTRADE_LOGO_BASE_URL = "https://passiv-brokerage-logos.s3.ca-central-1.amazonaws.com"

# --- seeded Plaid Items -------------------------------------------------------

PLAID_ITEM_IDS = {
    "merrill-lynch": "Mx8LnqW3ZbTgR5vKpJd7YcAe2hFs9NwUo4Bk6",
    "interactive-brokers": "Ib2RkvP7XcWn4TqLmHs9GdJe5aYu3ZfN8Ct6",
}
PLAID_ACCOUNT_IDS = {
    "merrill-cma": "mL1cmaQ9vBw7XkRzN3pT5sYd8jHf2GaE4uKc6",
    "merrill-ira": "mL2iraP4nVx8ZqWt6RbY3kJd9cHs5FgU7eMa2",
    "ibkr-individual": "iB1indK5wTz2XpNr8QvL6mYc4sJd7GhF3aRe9",
}
PLAID_SEEDED_CREATED_AT = {
    "merrill-lynch": "2026-02-03T16:12:45Z",
    "interactive-brokers": "2026-03-18T09:41:07Z",
}

# --- seeded SnapTrade user ------------------------------------------------------

SNAPTRADE_AUTHORIZATION_IDS = {
    "interactive-brokers": "8d0f2b64-7a1c-4e39-b5d2-6c8e0a4f1b73",
    "charles-schwab": "3f6a9c12-5e8b-4d07-a1c4-9b2e7d5f0a86",
}
SNAPTRADE_ACCOUNT_IDS = {
    "ibkr-individual": "1b7e4c2a-9d3f-4a68-8c15-e2f0b6d4a937",
    "schwab-individual": "5c9a2e7f-4b1d-4f83-a6e0-d3b8c1f5e742",
}
SNAPTRADE_SEEDED_CREATED_AT = {
    "interactive-brokers": "2026-03-18T09:55:31Z",
    "charles-schwab": "2026-05-06T14:20:02Z",
}
# Interactive Brokers answers trade requests with 403 code 1020 for this demo
# app (its trading permission is not enabled); Schwab allows trading.
SNAPTRADE_TRADING_ALLOWED = {"interactive-brokers": False, "charles-schwab": True}

# --- what tests compare against ---------------------------------------------------

IBKR_ACCOUNT_MASK = IBKR_INDIVIDUAL.mask
IBKR_POSITIONS: list[tuple[str, float]] = [(h.ticker, h.quantity) for h in IBKR_INDIVIDUAL.holdings]
IBKR_CASH: dict[str, float] = dict(IBKR_INDIVIDUAL.cash)
ALL_ACCOUNTS: tuple[AccountTemplate, ...] = tuple(
    a for i in INSTITUTIONS.values() for a in i.accounts
)
POSITION_COUNT = sum(len(a.holdings) for a in ALL_ACCOUNTS)
CASH_BALANCE_COUNT = sum(len(a.cash) for a in ALL_ACCOUNTS)


def holding_by_ticker(ticker: str) -> Holding | None:
    for account in ALL_ACCOUNTS:
        for holding in account.holdings:
            if holding.ticker == ticker:
                return holding
    return None


def initial_state() -> dict[str, Any]:
    """The mutable state a fresh emulator starts from (JSON-serialisable)."""
    items = {
        PLAID_ITEM_IDS[slug]: {
            "item_id": PLAID_ITEM_IDS[slug],
            "institution": slug,
            "access_token": demo.PLAID_ACCESS_TOKENS[slug],
            "public_token": None,
            "created_at": PLAID_SEEDED_CREATED_AT[slug],
            "removed": False,
            "account_ids": {
                a.key: PLAID_ACCOUNT_IDS[a.key] for a in PLAID_INSTITUTIONS[slug].accounts
            },
        }
        for slug in PLAID_ITEM_IDS
    }
    authorizations = {
        SNAPTRADE_AUTHORIZATION_IDS[slug]: {
            "id": SNAPTRADE_AUTHORIZATION_IDS[slug],
            "user_id": demo.SNAPTRADE_USER_ID,
            "brokerage": slug,
            "type": "trade",
            "created_date": SNAPTRADE_SEEDED_CREATED_AT[slug],
            "disabled": False,
            "disabled_date": None,
            "trading_allowed": SNAPTRADE_TRADING_ALLOWED[slug],
            "account_ids": {
                a.key: SNAPTRADE_ACCOUNT_IDS[a.key] for a in SNAPTRADE_BROKERAGES[slug].accounts
            },
        }
        for slug in SNAPTRADE_AUTHORIZATION_IDS
    }
    return {
        "version": 1,
        "plaid": {"items": items, "link_tokens": {}},
        "snaptrade": {
            "users": {
                demo.SNAPTRADE_USER_ID: {
                    "user_secret": demo.SNAPTRADE_USER_SECRET,
                    "created_at": "2026-03-18T09:50:12Z",
                }
            },
            "authorizations": authorizations,
            "portal_sessions": {},
            "trades": {},
            "orders": [],
        },
        # Test-set changes to the seeded holdings (see sandbox.overrides).
        "overrides": {"units": {}},
    }
