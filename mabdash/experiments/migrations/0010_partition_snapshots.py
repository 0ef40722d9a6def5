"""PostgreSQL: allocation snapshots become a table partitioned by month of ``created_at``.

One partition per UTC month (``experiments_allocationsnapshot_pYYYYMM``) from the oldest stored
month to the next, and a default partition for rows outside every month. The primary key
becomes (``id``, ``created_at``) — a partitioned table's unique keys must include the
partition key — and ``id`` keeps its identity sequence, continued past the copied rows. The
other indexes and the foreign key to the experiment are created again on the parent
(PostgreSQL creates the indexes on each partition). Existing rows are copied in one
statement. Snapshots past ``MABDASH_SNAPSHOT_RETENTION_DAYS`` then go a month at a time
(``mabdash.experiments.services.retention.snapshots_expire``); SQLite keeps one plain table.
"""

from datetime import UTC, date, datetime

from django.db import migrations

TABLE = "experiments_allocationsnapshot"


def _following(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _month_partition(cursor, month: date) -> None:
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE}_p{month:%Y%m} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{month:%Y-%m-%d} 00:00:00+00') TO ('{_following(month):%Y-%m-%d} 00:00:00+00')"
    )


def _indexes_and_foreign_keys(cursor) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
        [TABLE, f"{TABLE}_pkey"],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
        "AND contype = 'f'",
        [TABLE],
    )
    return indexes, cursor.fetchall()


def _copy_rows_and_sequence(cursor, source: str) -> None:
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {source}")
    cursor.execute(f"DROP TABLE {source}")
    cursor.execute(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')")
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT setval(%s, COALESCE(max(id), 1), max(id) IS NOT NULL) FROM {TABLE}", [sequence])
    if sequence != f"public.{TABLE}_id_seq":
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {TABLE}_id_seq")


def _recreate(cursor, indexes, foreign_keys) -> None:
    for _, definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')


def partition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        indexes, foreign_keys = _indexes_and_foreign_keys(cursor)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unpartitioned")
        cursor.execute(
            f"ALTER TABLE {TABLE}_unpartitioned RENAME CONSTRAINT {TABLE}_pkey TO {TABLE}_unpartitioned_pkey"
        )
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {TABLE}_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING IDENTITY) PARTITION BY RANGE (created_at)"
        )
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, created_at)")
        _recreate(cursor, indexes, foreign_keys)
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(f"SELECT min(created_at) FROM {TABLE}_unpartitioned")
        oldest = cursor.fetchone()[0]
        this_month = datetime.now(UTC).date().replace(day=1)
        month = min(oldest.astimezone(UTC).date().replace(day=1), this_month) if oldest else this_month
        while month <= _following(this_month):
            _month_partition(cursor, month)
            month = _following(month)
        _copy_rows_and_sequence(cursor, f"{TABLE}_unpartitioned")


def unpartition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        indexes, foreign_keys = _indexes_and_foreign_keys(cursor)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')  # on a partitioned parent: its partitions' too
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_partitioned")
        cursor.execute(f"ALTER TABLE {TABLE}_partitioned RENAME CONSTRAINT {TABLE}_pkey TO {TABLE}_partitioned_pkey")
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {TABLE}_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING IDENTITY)"
        )
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
        _copy_rows_and_sequence(cursor, f"{TABLE}_partitioned")
        _recreate(cursor, indexes, foreign_keys)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("experiments", "0009_partition_decisions"),
    ]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
