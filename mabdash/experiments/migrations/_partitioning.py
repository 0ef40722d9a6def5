"""Turning a table with an identity ``id`` into a range-partitioned one, and back (PostgreSQL).

Shared by the migrations that partition the allocation snapshots (0010, by month) and the
reward ledger (0011, by day). The primary key becomes (``id``, partition column) — a
partitioned table's unique keys must include the partition key — and ``id`` keeps its
identity sequence, continued past the copied rows. The other indexes and the foreign keys
are created again on the parent (PostgreSQL creates the indexes on each partition); rows are
copied in one statement. The loader skips this module: its name starts with "_".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from django.db import migrations

#: The partitions to make, given the oldest stored day (None: an empty table):
#: (name suffix, first day, day after the last).
Periods = Callable[[date | None], list[tuple[str, date, date]]]


def _indexes_and_foreign_keys(cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
        [table, f"{table}_pkey"],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
        "AND contype = 'f'",
        [table],
    )
    return indexes, cursor.fetchall()


def _drop(cursor, table: str, indexes, foreign_keys) -> None:
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')  # on a partitioned parent: its partitions' too
    for name, _ in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def _recreate(cursor, table: str, indexes, foreign_keys) -> None:
    for _, definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _copy_rows_and_sequence(cursor, table: str, source: str) -> None:
    cursor.execute(f"INSERT INTO {table} SELECT * FROM {source}")
    cursor.execute(f"DROP TABLE {source}")
    cursor.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT setval(%s, COALESCE(max(id), 1), max(id) IS NOT NULL) FROM {table}", [sequence])
    if sequence != f"public.{table}_id_seq":
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {table}_id_seq")


def partition(cursor, table: str, column: str, periods: Periods) -> None:
    """Make ``table`` partitioned by range of ``column``, with ``periods``' partitions and a default one."""
    indexes, foreign_keys = _indexes_and_foreign_keys(cursor, table)
    _drop(cursor, table, indexes, foreign_keys)
    cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
    cursor.execute(f"ALTER TABLE {table}_unpartitioned RENAME CONSTRAINT {table}_pkey TO {table}_unpartitioned_pkey")
    cursor.execute(
        f"CREATE TABLE {table} (LIKE {table}_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING IDENTITY) PARTITION BY RANGE ({column})"
    )
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id, {column})")
    _recreate(cursor, table, indexes, foreign_keys)
    cursor.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    cursor.execute(f"SELECT min({column}) FROM {table}_unpartitioned")
    oldest = cursor.fetchone()[0]
    for suffix, first, end in periods(oldest.astimezone(UTC).date() if oldest else None):
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {table}_p{suffix} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)",
            [_midnight(first), _midnight(end)],
        )
    _copy_rows_and_sequence(cursor, table, f"{table}_unpartitioned")


def unpartition(cursor, table: str) -> None:
    """Make ``table`` one plain table again, primary key ``id``."""
    indexes, foreign_keys = _indexes_and_foreign_keys(cursor, table)
    _drop(cursor, table, indexes, foreign_keys)
    cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
    cursor.execute(f"ALTER TABLE {table}_partitioned RENAME CONSTRAINT {table}_pkey TO {table}_partitioned_pkey")
    cursor.execute(
        f"CREATE TABLE {table} (LIKE {table}_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY)"
    )
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")
    _copy_rows_and_sequence(cursor, table, f"{table}_partitioned")
    _recreate(cursor, table, indexes, foreign_keys)


def operation(table: str, column: str, periods: Periods) -> migrations.RunPython:
    """The migration step: partition on PostgreSQL (and back when reversed); nothing on SQLite."""

    def forward(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                partition(cursor, table, column, periods)

    def backward(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                unpartition(cursor, table)

    return migrations.RunPython(forward, backward, elidable=False)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
