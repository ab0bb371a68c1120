"""Shadow copies of the projection tables: a schema of their own, the swap, the comparison.

A rebuild writes into a schema (`logger_rebuild`, or `logger_verify` for a check) that holds
tables created from the same models as the live ones (same columns, constraints, index
names) plus its own `projection_checkpoints`. The ids of `task_logger` and `audit_log` come
from the *live* tables' sequences, so a shadow row never takes an id a live row has, and the
swap can hand those sequences over to the new tables.

The swap moves the live tables into a retired schema and the shadow tables into the live
schema (`ALTER TABLE … SET SCHEMA`, in one transaction: PostgreSQL DDL is transactional), then
drops both schemas. Readers blocked on the tables for that moment continue on the new ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from services.logger_service.adapters.orm import metadata
from services.logger_service.adapters.projection_store import SqlProjectionStore

# The projection's tables, parents first; they move together in a swap.
PROJECTION_TABLES = ("task_state", "task_logger", "audit_log", "projection_skipped")
ID_TABLES = ("task_logger", "audit_log")
SHADOW_TABLES = (*PROJECTION_TABLES, "projection_checkpoints")


@dataclass(frozen=True)
class Compared:
    """How one table's rows are matched (natural key) and compared (values, no surrogate ids)."""

    table: str
    key: tuple[str, ...]
    values: tuple[str, ...]


COMPARED = (
    Compared("task_state", ("task_id",), (
        "title", "description", "status", "priority", "due_date", "deleted", "version",
        "updated_at", "created_by", "created_at")),
    Compared("task_logger", ("task_id", "date"), (
        "title", "description", "status", "priority", "transferred_at")),
    Compared("audit_log", ("event_id",), (
        "task_id", "previous_status", "new_status", "modified_by", "timestamp")),
    Compared("projection_skipped", ("name", "seq"), ()),
)


def quoted(name: str) -> str:
    """A schema or table name as an SQL identifier (names here are our own constants)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad identifier {name!r}")
    return f'"{name}"'


def live_schema(engine: Engine) -> str:
    """The schema the live tables are in (the first of the search path)."""
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT current_schema()")).scalar_one())


def schema_exists(connection: Connection, schema: str) -> bool:
    """True when the schema exists."""
    return bool(connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).scalar())


def serial_sequence(connection: Connection, schema: str, table: str) -> str | None:
    """The sequence owned by `schema.table.id`."""
    found = connection.execute(
        text("SELECT pg_get_serial_sequence(:table, 'id')"),
        {"table": f"{quoted(schema)}.{quoted(table)}"},
    ).scalar()
    return str(found) if found else None


def create_shadow(connection: Connection, schema: str, live: str) -> None:
    """Create the schema and empty projection tables whose ids come from the live sequences."""
    connection.execute(text(f"CREATE SCHEMA {quoted(schema)}"))
    translated = connection.execution_options(schema_translate_map={None: schema})
    metadata.create_all(translated, tables=[metadata.tables[t] for t in SHADOW_TABLES],
                        checkfirst=False)
    for table in ID_TABLES:
        own = serial_sequence(connection, schema, table)
        shared = serial_sequence(connection, live, table)
        if shared is None:
            raise RuntimeError(f"{live}.{table}.id has no sequence")
        literal = shared.replace("'", "''")
        connection.execute(text(
            f"ALTER TABLE {quoted(schema)}.{quoted(table)} "
            f"ALTER COLUMN id SET DEFAULT nextval('{literal}'::regclass)"))
        if own:
            connection.execute(text(f"DROP SEQUENCE {own}"))


def drop_schema(connection: Connection, schema: str) -> None:
    """Drop a shadow (or retired) schema and everything in it."""
    connection.execute(text(f"DROP SCHEMA IF EXISTS {quoted(schema)} CASCADE"))


@contextmanager
def in_schema(connection: Connection, schema: str) -> Iterator[Connection]:
    """Resolve unqualified table names to `schema` until the transaction ends or the block exits."""
    previous = connection.execute(text("SELECT current_setting('search_path')")).scalar_one()
    connection.execute(text("SELECT set_config('search_path', :path, true)"),
                       {"path": quoted(schema)})
    try:
        yield connection
    finally:
        connection.execute(text("SELECT set_config('search_path', :path, true)"),
                           {"path": previous})


def lock_live_checkpoint(connection: Connection, live: str, name: str) -> int:
    """Lock the live checkpoint row (the projector's per-batch lock); return its seq."""
    table = f"{quoted(live)}.projection_checkpoints"
    connection.execute(text(f"INSERT INTO {table} (name, last_seq) VALUES (:name, 0) "
                            "ON CONFLICT (name) DO NOTHING"), {"name": name})
    return int(connection.execute(text(
        f"SELECT last_seq FROM {table} WHERE name = :name FOR UPDATE"), {"name": name}
    ).scalar_one())


def shadow_checkpoint(connection: Connection, schema: str, name: str) -> int:
    """The shadow's own checkpoint (0 before any event)."""
    found = connection.execute(text(
        f"SELECT last_seq FROM {quoted(schema)}.projection_checkpoints WHERE name = :name"),
        {"name": name}).scalar()
    return int(found or 0)


def skipped_in(connection: Connection, schema: str, name: str) -> dict[int, str]:
    """The events a set of projection tables skipped: seq → error."""
    rows = connection.execute(text(
        f"SELECT seq, error FROM {quoted(schema)}.projection_skipped WHERE name = :name "
        "ORDER BY seq"), {"name": name})
    return {int(seq): str(error) for seq, error in rows}


def logged_dates(connection: Connection, schema: str) -> set[dt.date]:
    """Every date that has TaskLogger rows."""
    rows = connection.execute(text(
        f"SELECT DISTINCT date FROM {quoted(schema)}.task_logger")).scalars()
    return set(rows)


def swap(connection: Connection, shadow: str, live: str, name: str, checkpoint: int) -> None:
    """Put the shadow tables in place of the live ones and set the live checkpoint.

    Runs inside the caller's transaction, which must hold the live checkpoint row lock.
    """
    retired = f"{shadow}_retired"
    sequences = {t: serial_sequence(connection, live, t) for t in ID_TABLES}
    drop_schema(connection, retired)
    connection.execute(text(f"CREATE SCHEMA {quoted(retired)}"))
    for sequence in sequences.values():
        connection.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    for table in reversed(PROJECTION_TABLES):
        connection.execute(text(
            f"ALTER TABLE {quoted(live)}.{quoted(table)} SET SCHEMA {quoted(retired)}"))
    for table in PROJECTION_TABLES:
        connection.execute(text(
            f"ALTER TABLE {quoted(shadow)}.{quoted(table)} SET SCHEMA {quoted(live)}"))
    for table, sequence in sequences.items():
        connection.execute(text(
            f"ALTER SEQUENCE {sequence} OWNED BY {quoted(live)}.{quoted(table)}.id"))
    connection.execute(text(
        f"UPDATE {quoted(live)}.projection_checkpoints SET last_seq = :seq, updated_at = now() "
        "WHERE name = :name"), {"seq": checkpoint, "name": name})
    drop_schema(connection, retired)
    drop_schema(connection, shadow)


@dataclass(frozen=True)
class TableDifference:
    """One table compared: row counts, how many rows differ, and the first few keys."""

    table: str
    live_rows: int
    rebuilt_rows: int
    differing: int
    examples: list[dict[str, Any]]

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        verdict = "equal" if not self.differing else f"{self.differing} rows differ"
        found = [f"{self.table}: {self.live_rows} live rows, {self.rebuilt_rows} rebuilt rows, "
                 f"{verdict}"]
        for row in self.examples:
            key = ", ".join(f"{k}={v}" for k, v in row.items() if k != "state")
            found.append(f"  {self.table} ({key}): {row['state']}")
        return found


def compare_table(connection: Connection, spec: Compared, live: str, shadow: str,
                  show: int) -> TableDifference:
    """Compare one table of the live schema with the shadow's, by key and value hash."""
    keys = ", ".join(spec.key)
    values = ", ".join(spec.values) or "NULL"
    digest = f"md5(ROW({values})::text)"
    sql = f"""
        WITH live AS (SELECT {keys}, {digest} AS h FROM {quoted(live)}.{spec.table}),
             rebuilt AS (SELECT {keys}, {digest} AS h FROM {quoted(shadow)}.{spec.table})
        SELECT {keys}, CASE WHEN live.h IS NULL THEN 'missing in live'
                            WHEN rebuilt.h IS NULL THEN 'missing in rebuild'
                            ELSE 'values differ' END AS state,
               count(*) OVER () AS differing
        FROM live FULL JOIN rebuilt USING ({keys})
        WHERE live.h IS DISTINCT FROM rebuilt.h
        ORDER BY {keys} LIMIT :show
    """
    rows = [dict(r) for r in connection.execute(text(sql), {"show": max(show, 1)}).mappings()]
    differing = int(rows[0]["differing"]) if rows else 0
    counts = connection.execute(text(
        f"SELECT (SELECT count(*) FROM {quoted(live)}.{spec.table}), "
        f"(SELECT count(*) FROM {quoted(shadow)}.{spec.table})")).one()
    examples = [{k: v for k, v in row.items() if k != "differing"} for row in rows[:show]]
    return TableDifference(spec.table, int(counts[0]), int(counts[1]), differing, examples)


def compare(connection: Connection, live: str, shadow: str, show: int = 10
            ) -> list[TableDifference]:
    """Compare every projection table of the live schema with the shadow's."""
    return [compare_table(connection, spec, live, shadow, show) for spec in COMPARED]


class ShadowProjectionStore(SqlProjectionStore):
    """The projector's writes aimed at a shadow schema (the connection's search path).

    The transfer reuses the id a live TaskLogger row of the same task and date already has,
    so entry ids (`GET /task/<id>`) survive a rebuild; other rows get fresh ids from the
    live sequence.
    """

    def __init__(self, connection: Connection, live: str, id_sequence: str) -> None:
        super().__init__(connection)
        self.live = live
        self.id_sequence = id_sequence

    def transfer(self, day: dt.date, at: dt.datetime) -> int:
        """Copy live active tasks into the day's shadow log, keeping live entry ids."""
        statement = text(f"""
            INSERT INTO task_logger (id, task_id, title, description, status, priority, date,
                                     transferred_at)
            SELECT coalesce(l.id, nextval(CAST(:sequence AS regclass))), s.task_id, s.title,
                   s.description, s.status, s.priority, :day, :at
            FROM task_state AS s
            LEFT JOIN {quoted(self.live)}.task_logger AS l
                   ON l.task_id = s.task_id AND l.date = :day
            WHERE NOT s.deleted AND s.status IN ('active', 'in_progress')
            ORDER BY s.task_id
            ON CONFLICT (task_id, date) DO NOTHING
        """)
        params: Mapping[str, Any] = {"sequence": self.id_sequence, "day": day, "at": at}
        return int(self.connection.execute(statement, dict(params)).rowcount)
