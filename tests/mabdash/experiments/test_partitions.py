"""The decision ledger's day partitions on PostgreSQL: routing, idempotent writes, partitions
made ahead, emptied days dropped, time-ranged reads pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from mabdash.experiments.models import Decision
from mabdash.experiments.services import partitions
from mabdash.experiments.services.decision_log import decisions_insert

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def partition_of(decision_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM experiments_decision WHERE decision_id = %s", [decision_id]
        )
        return cursor.fetchone()[0]


def row(experiment, decision_id: str, when: datetime) -> tuple:
    arm = experiment.arms.get(position=0)
    return (decision_id, experiment.pk, arm.pk, 0.5, 1, "policy", int(when.timestamp() * 1000))


def test_decisions_go_to_the_partition_of_their_day_and_are_written_once(experiment):
    assert partitions.partitioned()
    today = datetime.now(UTC).date()
    days = [p.day for p in partitions.partitions_list()]
    assert [today + timedelta(days=n) for n in range(partitions.DAYS_AHEAD + 1)] == days[-partitions.DAYS_AHEAD - 1 :]
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=400)
    assert decisions_insert([row(experiment, "d-now", now), row(experiment, "d-old", long_ago)]) == {"d-now", "d-old"}
    assert decisions_insert([row(experiment, "d-now", now)]) == set()  # a client's retry
    assert partition_of("d-now") == f"experiments_decision_p{now:%Y%m%d}"
    assert partition_of("d-old") == "experiments_decision_default"
    assert Decision.objects.filter(decision_id="d-now").count() == 1
    assert experiment.arms.get(position=0).served_count == 2


def test_partitions_are_made_ahead_once_and_emptied_past_days_are_dropped(experiment):
    today = datetime.now(UTC).date()
    later = today + timedelta(days=30)
    created = partitions.partitions_ensure(later, days_ahead=1)
    assert created == [
        f"experiments_decision_p{later:%Y%m%d}",
        f"experiments_decision_p{later + timedelta(days=1):%Y%m%d}",
    ]
    assert partitions.partitions_ensure(later, days_ahead=1) == []
    # A day that has rows keeps its partition; once its rows are gone, the partition goes.
    when = datetime(later.year, later.month, later.day, 12, tzinfo=UTC)
    decisions_insert([row(experiment, "future", when)])
    after = later + timedelta(days=2)
    dropped = partitions.partitions_drop_empty(after)  # every empty day before it, the next one included
    assert f"experiments_decision_p{later + timedelta(days=1):%Y%m%d}" in dropped
    assert f"experiments_decision_p{later:%Y%m%d}" not in dropped
    Decision.objects.filter(decision_id="future").delete()
    assert partitions.partitions_drop_empty(after) == [f"experiments_decision_p{later:%Y%m%d}"]
    assert later not in {p.day for p in partitions.partitions_list()}
    decisions_insert([row(experiment, "late", when)])  # its day's partition is gone: the default takes it
    assert partition_of("late") == "experiments_decision_default"


def test_a_time_ranged_read_touches_only_the_partitions_of_its_range(experiment):
    today = datetime.now(UTC).date()
    past = today - timedelta(days=3)
    partitions.partitions_ensure(past, days_ahead=0)
    since = datetime.now(UTC) - timedelta(hours=1)
    sql, params = Decision.objects.filter(experiment_id=experiment.pk, created_at__gte=since).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line[0] for line in cursor.fetchall())
    assert f"experiments_decision_p{today:%Y%m%d}" in plan
    assert f"experiments_decision_p{past:%Y%m%d}" not in plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_decisions_into_day_partitions_and_back(experiment):
    from django.db.migrations.executor import MigrationExecutor

    def migrate(target: str) -> None:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("experiments", target)])

    now = datetime.now(UTC)
    migrate("0008_retention_and_checkpoints")
    assert not partitions.partitioned()
    decisions_insert([row(experiment, "before-today", now - timedelta(days=2)), row(experiment, "today", now)])
    migrate("0009_partition_decisions")
    assert partitions.partitioned()
    assert partition_of("before-today") == f"experiments_decision_p{now - timedelta(days=2):%Y%m%d}"
    assert partition_of("today") == f"experiments_decision_p{now:%Y%m%d}"
    assert partitions.partitions_list()[0].day == (now - timedelta(days=2)).date()  # from the oldest stored day
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'experiments_decision' ORDER BY 1")
        names = [r[0] for r in cursor.fetchall()]
    assert "decision_exp_time" in names and "experiments_decision_pkey" in names
    migrate("0008_retention_and_checkpoints")
    assert not partitions.partitioned()
    assert sorted(Decision.objects.values_list("decision_id", flat=True)) == ["before-today", "today"]
    migrate("0009_partition_decisions")


def test_the_command_lists_and_maintains(experiment, capsys):
    from django.core.management import call_command

    today = datetime.now(UTC).date()
    call_command("partitions", "--maintain")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "created 0 partitions, dropped 0 empty ones"  # the migration made today's week
    first = partitions.partitions_list()[0].day
    count = len(partitions.partitions_list())
    assert out[1] == f"{count} day partitions, {first} … {today + timedelta(days=7)}, and a default partition"
