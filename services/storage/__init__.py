"""Storage: the database engine, its schema and its health.

``db`` makes engines and upgrades the schema (nothing connects at import time);
``outage`` tells a database outage from a bug; ``readiness`` answers ``/readyz``;
``users`` keeps one row per person.

Guarantees: SQLite and Postgres behave the same to the layers above; an outage is a short,
clear error, never a traceback.
"""

from services.storage.db import make_engine, schema_state, upgrade_schema
from services.storage.outage import database_outage
from services.storage.readiness import check_readiness, require_secret_store
from services.storage.users import ensure_user, user_id_for

__all__ = [
    "check_readiness",
    "database_outage",
    "ensure_user",
    "make_engine",
    "require_secret_store",
    "schema_state",
    "upgrade_schema",
    "user_id_for",
]
