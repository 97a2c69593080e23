"""Storage: the database engine, its schema and its health.

``db`` makes engines and upgrades the schema (nothing connects at import time);
``outage`` tells a database outage from a bug; ``readiness`` answers ``/readyz``;
``users`` keeps one row per person.

Guarantees: SQLite and Postgres behave the same to the layers above; an outage is a short,
clear error, never a traceback.
"""

from services.storage.users import ensure_user, user_id_for

__all__ = [
    "ensure_user",
    "user_id_for",
]
