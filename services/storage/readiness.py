"""Readiness: can this process serve people now? ``GET /readyz`` asks.

Three checks, each cheap and changing nothing (the embedded default migrates its own
SQLite file first, as on any first use): the database answers ``SELECT 1``,
its schema is at the newest migration, and the secret store can be read. The answer
names each check and what is wrong, in words: no path, host or secret is ever quoted.
(``/healthz`` stays a liveness probe: it says the process runs, nothing more.)
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import Engine, text

from core.errors import (
    BrokerageHubError,
    SchemaBehind,
    SecretStoreError,
    Unavailable,
    bounded_message,
)
from core.secret_store import SecretStore
from services.storage.db import schema_state
from services.storage.outage import database_outage

log = logging.getLogger(__name__)

OK = "ok"
# A name no one stores: reading whether it exists touches the store and nothing else.
PROBE_SECRET_NAME = "app/readiness_probe"  # noqa: S105 (a name, not a value)


class Sources(Protocol):
    """What the checks read (the composition root's ``Services``)."""

    @property
    def engine(self) -> Engine: ...  # migrates on the embedded default; SchemaBehind elsewhere

    @property
    def database(self) -> Engine: ...  # the engine whatever its schema

    @property
    def secret_store(self) -> SecretStore: ...


def require_secret_store(hub: Sources) -> None:
    """Raise (``SecretStoreUnavailable``, ``SecretStoreError``) unless the store can be read.

    The CLI asks before every command that reads secrets, so a broken store stops each of
    them with the same one line.
    """
    hub.secret_store.exists(PROBE_SECRET_NAME)


def check_readiness(hub: Sources) -> dict[str, Any]:
    """``{"ready": bool, "checks": {name: "ok" or the problem}, "failing": [names]}``."""
    checks: dict[str, str] = {}
    database = _database(hub)
    checks["database"] = OK if isinstance(database, Engine) else database
    checks["schema"] = (
        _schema(database)
        if isinstance(database, Engine)
        else "not checked: the database is not reachable"
    )
    checks["secret_store"] = _secret_store(hub)
    failing = [
        name
        for name, answer in checks.items()
        if answer != OK and not answer.startswith("not checked")
    ]
    return {"ready": all(a == OK for a in checks.values()), "checks": checks, "failing": failing}


def _database(hub: Sources) -> Engine | str:
    try:
        try:
            engine = hub.engine
        except SchemaBehind:
            engine = hub.database  # reachable but behind: the schema check says so
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # a probe reports, it does not raise
        return _problem("database", exc, "the database is not reachable")
    return engine


def _schema(engine: Engine) -> str:
    try:
        problem = schema_state(engine).problem()
    except Exception as exc:
        return _problem("schema", exc, "the schema revision could not be read")
    return OK if problem is None else problem


def _secret_store(hub: Sources) -> str:
    try:
        hub.secret_store.exists(PROBE_SECRET_NAME)
    except (Unavailable, SecretStoreError) as exc:
        log.warning("readiness: the secret store failed: %s", exc.message)
        return bounded_message(exc.message)
    except Exception as exc:
        return _problem("secret store", exc, "the secret store cannot be read")
    return OK


def _problem(check: str, exc: BaseException, generic: str) -> str:
    if database_outage(exc) is not None:
        log.warning("readiness: %s: %s", check, type(exc).__name__)
        return "the database is not reachable"
    if isinstance(exc, BrokerageHubError):
        log.warning("readiness: %s: %s", check, exc.message)
        return bounded_message(exc.message)
    log.error("readiness: %s check failed unexpectedly", check, exc_info=exc)
    return generic
