"""PostgreSQL: allocation snapshots become a table partitioned by month of ``created_at``.

One partition per UTC month (``experiments_allocationsnapshot_pYYYYMM``) from the oldest stored
month to the next, and a default partition for rows outside every month. The primary key
becomes (``id``, ``created_at``) and ``id`` keeps its identity sequence; indexes and the
foreign key to the experiment are created again (``_partitioning``). Snapshots past
``MABDASH_SNAPSHOT_RETENTION_DAYS`` then go a month at a time
(``mabdash.experiments.services.retention.snapshots_expire``); SQLite keeps one plain table.
"""

from datetime import UTC, date, datetime

from django.db import migrations

from mabdash.experiments.migrations import _partitioning

TABLE = "experiments_allocationsnapshot"


def _following(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _months(oldest: date | None) -> list[tuple[str, date, date]]:
    """From the oldest stored month (or this one) to the next."""
    this_month = datetime.now(UTC).date().replace(day=1)
    month = min(oldest.replace(day=1), this_month) if oldest else this_month
    months = []
    while month <= _following(this_month):
        months.append((f"{month:%Y%m}", month, _following(month)))
        month = _following(month)
    return months


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("experiments", "0009_partition_decisions"),
    ]

    operations = [_partitioning.operation(TABLE, "created_at", _months)]
