"""Daily partitions of the decision ledger (PostgreSQL; SQLite keeps one plain table).

The decision table is range-partitioned by ``created_at``, one partition per UTC day
(``experiments_decision_pYYYYMMDD``), plus a default partition that takes a row no day's
partition covers (a decision reported long after it was served). Migration 0009 made the
table; beat keeps ``DAYS_AHEAD`` days of partitions ready, and drops a past day's partition
once it is empty — retention deleted its rows after archiving them — which gives its space
back at once, where a DELETE alone leaves it to VACUUM. Queries with a time range (the
overview's recent counts, the dashboard's lag sample, the counterfactual log, retention)
read only the partitions of that range.

Rewards stay in one table on purpose: their idempotency key, (experiment, event id), must be
unique for all time, and a partitioned table can only enforce uniqueness together with its
partition key — a retry that crossed midnight would be stored twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import DatabaseError, connection, transaction

from mabdash.experiments.models import Decision

logger = logging.getLogger(__name__)

PARENT = Decision._meta.db_table
DAYS_AHEAD = 7
_DAY = re.compile(rf"^{PARENT}_p(\d{{8}})$")


@dataclass(frozen=True)
class Partition:
    """One day's partition of the decision ledger."""

    name: str
    day: date


def partitioned() -> bool:
    """Whether the decision ledger is partitioned (PostgreSQL after migration 0009)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return bool(row and row[0] == "p")


def partitions_list() -> list[Partition]:
    """The day partitions, oldest first (not the default partition)."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = []
    for name in names:
        match = _DAY.match(name)
        if match:
            days.append(Partition(name, datetime.strptime(match.group(1), "%Y%m%d").date()))
    return sorted(days, key=lambda p: p.day)


def partitions_ensure(today: date | None = None, days_ahead: int = DAYS_AHEAD) -> list[str]:
    """Create the partitions of today and the next ``days_ahead`` days that are missing."""
    today = today or datetime.now(UTC).date()
    return partitions_create(today, today + timedelta(days=days_ahead))


def partitions_create(first: date, last: date) -> list[str]:
    """Create the missing day partitions from ``first`` to ``last`` (both included).

    A day whose rows are already in the default partition cannot get a partition (PostgreSQL
    refuses): it is logged and skipped, and its rows stay in the default partition.
    """
    if not partitioned():
        return []
    existing = {p.day for p in partitions_list()}
    created = []
    day = first
    while day <= last:
        name = f"{PARENT}_p{day:%Y%m%d}"
        if day not in existing:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)",
                        [_midnight(day), _midnight(day + timedelta(days=1))],
                    )
            except DatabaseError:
                logger.exception("could not create the decision partition of %s", day)
            else:
                created.append(name)
        day += timedelta(days=1)
    return created


def partitions_drop_empty(before: date) -> list[str]:
    """Drop the day partitions that end on or before ``before`` and hold no row.

    Under an exclusive lock of the parent — taken for the instant of the check and the drop —
    so a decision written meanwhile waits, then lands in the default partition.
    """
    dropped = []
    for partition in partitions_list():
        if partition.day + timedelta(days=1) > before:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # A long read of the ledger (a counterfactual report) holds the table: rather
                # than queue every decision write behind this lock, give up and try next time.
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {partition.name})")
                if cursor.fetchone()[0]:
                    continue
                cursor.execute(f"DROP TABLE {partition.name}")
        except DatabaseError:
            logger.warning("could not drop the empty decision partition %s now; next sweep", partition.name)
            continue
        dropped.append(partition.name)
    return dropped


def partitions_maintain(now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Beat: create the coming days' partitions; drop past days' empty ones (older than yesterday)."""
    today = (now or datetime.now(UTC)).date()
    return partitions_ensure(today), partitions_drop_empty(today - timedelta(days=1))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
