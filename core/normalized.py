"""The one position schema both providers are normalized into."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

SECURITY_TYPES = (
    "equity",
    "etf",
    "mutual_fund",
    "money_market",
    "fixed_income",
    "option",
    "crypto",
    "cash",
    "other",
)

PROVIDERS = ("plaid", "snaptrade")


@dataclass(frozen=True)
class NormalizedPosition:
    user_email: str
    provider: str
    institution: str
    account_id: str
    account_name: str | None
    account_type: str | None
    account_mask: str | None
    ticker: str | None
    name: str | None
    security_type: str
    quantity: float
    price: float | None
    market_value: float | None
    cost_basis: float | None
    currency: str
    as_of: datetime | None
    # A stable identifier of the security when the provider gives one, the same on both
    # providers: "figi:BBG000B9XRY4" (OpenFIGI), else "isin:..." or "cusip:...".
    security_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


POSITION_FIELDS = tuple(f.name for f in fields(NormalizedPosition))
SECURITY_ID_SCHEMES = ("figi", "isin", "cusip")


def security_identifier(**codes: object) -> str | None:
    """The first identifier given, as "scheme:CODE" (``figi`` before ``isin`` before
    ``cusip``); None when the provider gave none that looks like an identifier."""
    for scheme in SECURITY_ID_SCHEMES:
        code = codes.get(scheme)
        if isinstance(code, str):
            cleaned = code.strip().upper()
            if 6 <= len(cleaned) <= 20 and cleaned.isalnum():
                return f"{scheme}:{cleaned}"
    return None


def institution_display_name(slug: str) -> str:
    """'interactive-brokers' -> 'Interactive Brokers' (used when a provider omits the name)."""
    return KNOWN_INSTITUTIONS.get(slug, slug.replace("-", " ").title())


def institution_slug(name: str) -> str:
    """'Charles Schwab' -> 'charles-schwab': the form used in secret names."""
    for slug, display in KNOWN_INSTITUTIONS.items():
        if display.lower() == name.strip().lower():
            return slug
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in name.strip().lower())
    return "-".join(part for part in cleaned.split("-") if part)


KNOWN_INSTITUTIONS = {
    "merrill-lynch": "Merrill Lynch",
    "interactive-brokers": "Interactive Brokers",
    "charles-schwab": "Charles Schwab",
}
