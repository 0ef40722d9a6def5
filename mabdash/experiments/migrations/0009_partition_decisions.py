"""PostgreSQL: the decision ledger becomes a table partitioned by day of ``created_at``.

One partition per UTC day (``experiments_decision_pYYYYMMDD``) from the oldest stored day to a
week ahead, and a default partition for rows outside every day. The primary key becomes
(``decision_id``, ``created_at``) — a partitioned table's unique keys must include the
partition key — which is as unique as before: a decision id encodes the time it was issued,
so one id always has one ``created_at``. Every other index is created again on the parent
(PostgreSQL creates it on each partition). Existing rows are copied in one statement: on a
large table this migration takes as long as that copy. The model keeps ``decision_id`` as its
primary key; SQLite keeps one plain table. Beat creates later days' partitions
(``mabdash.experiments.services.partitions``).
"""

from datetime import UTC, datetime, timedelta

from django.db import migrations

TABLE = "experiments_decision"
DAYS_AHEAD = 7


def _day_partition(cursor, day) -> None:
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{day:%Y-%m-%d} 00:00:00+00') TO ('{day + timedelta(days=1):%Y-%m-%d} 00:00:00+00')"
    )


def partition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s "
            "AND indexname NOT LIKE %s",
            [TABLE, f"{TABLE}_pkey", "%\\_like"],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unpartitioned")
        cursor.execute(
            f"ALTER TABLE {TABLE}_unpartitioned RENAME CONSTRAINT {TABLE}_pkey TO {TABLE}_unpartitioned_pkey"
        )
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {TABLE}_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
            "PARTITION BY RANGE (created_at)"
        )
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (decision_id, created_at)")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(f"SELECT min(created_at) FROM {TABLE}_unpartitioned")
        oldest = cursor.fetchone()[0]
        today = datetime.now(UTC).date()
        day = min(oldest.astimezone(UTC).date(), today) if oldest else today
        while day <= today + timedelta(days=DAYS_AHEAD):
            _day_partition(cursor, day)
            day += timedelta(days=1)
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_unpartitioned")
        cursor.execute(f"DROP TABLE {TABLE}_unpartitioned")


def unpartition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
            [TABLE, f"{TABLE}_pkey"],
        )
        indexes = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_partitioned")
        cursor.execute(f"ALTER TABLE {TABLE}_partitioned RENAME CONSTRAINT {TABLE}_pkey TO {TABLE}_partitioned_pkey")
        for name, _ in indexes:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:50]}_partitioned"')
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {TABLE}_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (decision_id)")
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_partitioned")
        cursor.execute(f"DROP TABLE {TABLE}_partitioned")
        for _, definition in indexes:
            cursor.execute(definition)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("experiments", "0008_retention_and_checkpoints"),
    ]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
