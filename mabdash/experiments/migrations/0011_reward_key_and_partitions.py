"""The reward ledger's idempotency key moves to its own table; on PostgreSQL the ledger is
then partitioned by day of ``received_at``.

``RewardKey`` holds one row per stored reward, (experiment, event id), filled here from the
stored rewards, and takes over the uniqueness the reward table enforced: a partitioned table
can only enforce a uniqueness that includes its partition key, and a retry that crossed
midnight must still be refused. Then (PostgreSQL only) one partition per UTC day
(``experiments_reward_pYYYYMMDD``) from the oldest stored day to a week ahead, and a default
partition; the primary key becomes (``id``, ``received_at``), ``id`` keeps its identity
sequence, indexes and foreign keys are made again (``_partitioning``). On a large table this
migration takes as long as copying it. SQLite keeps one plain table, with the key table too.
"""

from datetime import UTC, date, datetime, timedelta

import django.db.models.deletion
from django.db import migrations, models

from mabdash.experiments.migrations import _partitioning

TABLE = "experiments_reward"
DAYS_AHEAD = 7


def _days(oldest: date | None) -> list[tuple[str, date, date]]:
    """From the oldest stored day (or today) to a week ahead."""
    today = datetime.now(UTC).date()
    day = min(oldest, today) if oldest else today
    days = []
    while day <= today + timedelta(days=DAYS_AHEAD):
        days.append((f"{day:%Y%m%d}", day, day + timedelta(days=1)))
        day += timedelta(days=1)
    return days


def fill_keys(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO experiments_rewardkey (experiment_id, event_id, received_at) "
            f"SELECT experiment_id, event_id, received_at FROM {TABLE}"
        )


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("experiments", "0010_partition_snapshots"),
    ]

    operations = [
        migrations.CreateModel(
            name="RewardKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "experiment", "event_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "experiment",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="experiments.experiment",
                    ),
                ),
                ("event_id", models.CharField(max_length=128)),
                ("received_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="reward", name="reward_event_per_experiment"),
        _partitioning.operation(TABLE, "received_at", _days),
    ]
