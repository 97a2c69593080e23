"""The users table: one row per person whose accounts Brokerage Hub shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from services.models import User


def user_id_for(engine: Engine, email: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(User.id).where(User.email == email)).scalar_one_or_none()


def ensure_user(engine: Engine, email: str, clock: Callable[[], datetime]) -> bool:
    """Create the user row if missing; True when this call created it."""
    if user_id_for(engine, email) is not None:
        return False
    try:
        with engine.begin() as conn:
            conn.execute(insert(User).values(email=email, created_at=clock()))
    except IntegrityError:  # another process created it first
        return False
    return True
