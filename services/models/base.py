"""The declarative base and the column types every table module shares."""

from __future__ import annotations

from sqlalchemy import Numeric
from sqlalchemy.orm import DeclarativeBase


def Amount() -> Numeric:  # noqa: N802 - reads like a column type
    return Numeric(28, 10, asdecimal=False)


class Base(DeclarativeBase):
    pass
