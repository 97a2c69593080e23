"""Reading a number that someone else wrote: a provider's answer, a stored JSON document."""

from __future__ import annotations

import math
from typing import Any


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float; None when absent, a boolean, not a number, NaN or infinite.

    Providers send decimals as strings or numbers. NaN or infinity would poison every
    total computed from it, and ``true`` is not 1: all are treated as not stated.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
