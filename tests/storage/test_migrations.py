"""The Alembic migrations build the schema on an empty SQLite and an empty Postgres database."""

from __future__ import annotations

from sqlalchemy import inspect

from services.models import Base
from services.storage.db import make_engine, upgrade_schema


def test_migrations_upgrade_an_empty_database_to_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    upgrade_schema(engine)  # idempotent
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in inspect(engine).get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    engine.dispose()
