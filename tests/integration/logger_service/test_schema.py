"""The migrations make the tables the models describe: a rebuild's shadow tables, made from
the models, take the place of the migrated ones, so the two must not drift apart."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from services.logger_service.adapters.orm import metadata

MODELS_SCHEMA = "from_models"


def definitions(connection: Connection, schema: str) -> tuple[set, set]:
    """Every column (table, name, type, nullable) and index (name, definition) of a schema."""
    columns = connection.execute(text(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = :schema"), {"schema": schema}).all()
    indexes = connection.execute(text(
        "SELECT indexname, replace(indexdef, quote_ident(:schema) || '.', '') FROM pg_indexes"
        " WHERE schemaname = :schema"), {"schema": schema}).all()
    return {tuple(row) for row in columns}, {tuple(row) for row in indexes}


def test_the_migrated_tables_are_the_models_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {MODELS_SCHEMA}"))
        metadata.create_all(connection.execution_options(
            schema_translate_map={None: MODELS_SCHEMA}))
        migrated_columns, migrated_indexes = definitions(connection, "public")
        model_columns, model_indexes = definitions(connection, MODELS_SCHEMA)
    migrated_columns = {c for c in migrated_columns if c[0] != "alembic_version"}
    migrated_indexes = {i for i in migrated_indexes if not i[0].startswith("alembic_version")}
    assert migrated_columns == model_columns
    assert migrated_indexes == model_indexes
