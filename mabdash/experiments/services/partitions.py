"""Time partitions of the ledgers (PostgreSQL; SQLite keeps plain tables).

Three tables are range-partitioned by time, each with a default partition that takes a row
no period's partition covers:

- the decision ledger, one partition per UTC day of ``created_at``
  (``experiments_decision_pYYYYMMDD``, migration 0009);
- the reward ledger, one partition per UTC day of ``received_at``
  (``experiments_reward_pYYYYMMDD``, migration 0011). Its idempotency key lives in
  ``RewardKey``, written in the same statement: a partitioned table can only enforce a
  uniqueness that includes its partition key, and a retry that crossed midnight must still
  be refused.

  Beat keeps a week of days of both ledgers ready and drops a past day's partition once it
  is empty — retention deleted its rows after archiving them — which gives its space back at
  once, where a DELETE alone leaves it to VACUUM.
- the allocation snapshots, one partition per UTC month of ``created_at``
  (``experiments_allocationsnapshot_pYYYYMM``, migration 0010). Snapshots past
  ``MABDASH_SNAPSHOT_RETENTION_DAYS`` go a whole month at a time
  (``retention.snapshots_expire``): a DROP, no DELETE.

Queries with a time range (the overview's recent counts, the dashboard's lag sample and
charts, the counterfactual log, retention) read only the partitions of that range. The
reward queries keyed by experiment and ledger order (the learner's claim, the rebuild, the
guardrails' window) read each partition's index, and find nothing in the days whose
rewards are all applied at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import DatabaseError, connection, transaction

from mabdash.experiments.models import AllocationSnapshot, Decision, Reward

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheme:
    """How one table is partitioned: by day or by month of its time column, ``ahead`` periods ready."""

    table: str
    period: str  # "day" or "month"
    ahead: int

    def start(self, day: date) -> date:
        """The first day of the period that holds ``day``."""
        return day if self.period == "day" else day.replace(day=1)

    def following(self, start: date) -> date:
        """The first day of the next period."""
        if self.period == "day":
            return start + timedelta(days=1)
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)

    def name(self, start: date) -> str:
        return f"{self.table}_p{start:%Y%m%d}" if self.period == "day" else f"{self.table}_p{start:%Y%m}"

    def parse(self, name: str) -> date | None:
        """The start of the period a partition's name stands for (None: not a period's partition)."""
        digits = 8 if self.period == "day" else 6
        match = re.fullmatch(rf"{self.table}_p(\d{{{digits}}})", name)
        if not match:
            return None
        return datetime.strptime(match.group(1), "%Y%m%d" if self.period == "day" else "%Y%m").date()


DECISIONS = Scheme(Decision._meta.db_table, "day", ahead=7)
REWARDS = Scheme(Reward._meta.db_table, "day", ahead=7)
SNAPSHOTS = Scheme(AllocationSnapshot._meta.db_table, "month", ahead=1)
SCHEMES = (DECISIONS, REWARDS, SNAPSHOTS)
#: The ledgers whose emptied past days beat drops (snapshots expire with retention).
LEDGERS = (DECISIONS, REWARDS)


@dataclass(frozen=True)
class Partition:
    """One period's partition: its table name and the first day it covers."""

    name: str
    start: date


def partitioned(scheme: Scheme = DECISIONS) -> bool:
    """Whether the table is partitioned (PostgreSQL after its migration)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [scheme.table])
        row = cursor.fetchone()
    return bool(row and row[0] == "p")


def partitions_list(scheme: Scheme = DECISIONS) -> list[Partition]:
    """The period partitions, oldest first (not the default partition)."""
    if not partitioned(scheme):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [scheme.table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = [Partition(name, start) for name in names if (start := scheme.parse(name)) is not None]
    return sorted(found, key=lambda p: p.start)


def partitions_ensure(today: date | None = None, ahead: int | None = None, scheme: Scheme = DECISIONS) -> list[str]:
    """Create the missing partitions of the current period and the next ``ahead`` ones."""
    first = scheme.start(today or datetime.now(UTC).date())
    last = first
    for _ in range(scheme.ahead if ahead is None else ahead):
        last = scheme.following(last)
    return partitions_create(first, last, scheme)


def partitions_create(first: date, last: date, scheme: Scheme = DECISIONS) -> list[str]:
    """Create the missing partitions of the periods from ``first``'s to ``last``'s (both included).

    A period whose rows are already in the default partition cannot get a partition
    (PostgreSQL refuses): it is logged and skipped, and its rows stay in the default partition.
    """
    if not partitioned(scheme):
        return []
    existing = {p.start for p in partitions_list(scheme)}
    created = []
    start = scheme.start(first)
    while start <= last:
        end = scheme.following(start)
        name = scheme.name(start)
        if start not in existing:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        f"CREATE TABLE {name} PARTITION OF {scheme.table} FOR VALUES FROM (%s) TO (%s)",
                        [_midnight(start), _midnight(end)],
                    )
            except DatabaseError:
                logger.exception("could not create the partition %s", name)
            else:
                created.append(name)
        start = end
    return created


def partitions_drop_empty(before: date, scheme: Scheme = DECISIONS) -> list[str]:
    """Drop the partitions that end on or before ``before`` and hold no row."""
    return _drop_ended(before, scheme, only_empty=True)


def partitions_drop_ended(before: date, scheme: Scheme) -> list[str]:
    """Drop the partitions that end on or before ``before``, with their rows (expired snapshots)."""
    return _drop_ended(before, scheme, only_empty=False)


def _drop_ended(before: date, scheme: Scheme, *, only_empty: bool) -> list[str]:
    """Under an exclusive lock of the parent — taken for the instant of the check and the
    drop — so a row written meanwhile waits, then lands in the default partition."""
    dropped = []
    for partition in partitions_list(scheme):
        if scheme.following(partition.start) > before:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # A long read of the table (a counterfactual report) holds it: rather than
                # queue every write behind this lock, give up and try next time.
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(f"LOCK TABLE {scheme.table} IN ACCESS EXCLUSIVE MODE")
                if only_empty:
                    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {partition.name})")
                    if cursor.fetchone()[0]:
                        continue
                cursor.execute(f"DROP TABLE {partition.name}")
        except DatabaseError:
            logger.warning("could not drop the partition %s now; next sweep", partition.name)
            continue
        dropped.append(partition.name)
    return dropped


def partitions_maintain(now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Beat: create the coming periods' partitions of every table; drop the ledgers' past
    days' empty partitions (older than yesterday). Expired snapshots are retention's."""
    today = (now or datetime.now(UTC)).date()
    created = [name for scheme in SCHEMES for name in partitions_ensure(today, scheme=scheme)]
    dropped = [name for scheme in LEDGERS for name in partitions_drop_empty(today - timedelta(days=1), scheme)]
    return created, dropped


def period_start_midnight(day: date, scheme: Scheme) -> datetime:
    """Midnight UTC at the start of the period that holds ``day``."""
    return _midnight(scheme.start(day))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
