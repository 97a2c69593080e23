"""The declarative base and the column types every table module shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


def Amount() -> Numeric:  # noqa: N802 - reads like a column type
    return Numeric(28, 10, asdecimal=False)


class ProviderText(TypeDecorator[str]):
    """``VARCHAR(length)`` for text a provider chooses (names, descriptions, symbols).

    A longer value is stored cut to ``length`` characters, ending in "…": Postgres would
    refuse it and fail the whole cache write over one security's description (SQLite would
    keep it whole, so the two would differ). For the same reason a NUL character, which no
    Postgres text can hold, is left out; every other character is kept as the provider sent it.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, str):
            return value
        if "\x00" in value:
            value = value.replace("\x00", "")
        if len(value) > self.length:
            return value[: self.length - 1] + "…"
        return value


class Base(DeclarativeBase):
    pass
