"""The ledgers' time partitions on PostgreSQL: decisions by day (routing, idempotent writes,
partitions made ahead, emptied days dropped, time-ranged reads pruned) and allocation
snapshots by month (routing, pruned chart reads, expired months dropped whole)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mabdash.experiments.models import AllocationSnapshot, Decision
from mabdash.experiments.services import partitions, retention
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
    days = [p.start for p in partitions.partitions_list()]
    assert [today + timedelta(days=n) for n in range(partitions.DECISIONS.ahead + 1)] == days[
        -partitions.DECISIONS.ahead - 1 :
    ]
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
    created = partitions.partitions_ensure(later, ahead=1)
    assert created == [
        f"experiments_decision_p{later:%Y%m%d}",
        f"experiments_decision_p{later + timedelta(days=1):%Y%m%d}",
    ]
    assert partitions.partitions_ensure(later, ahead=1) == []
    # A day that has rows keeps its partition; once its rows are gone, the partition goes.
    when = datetime(later.year, later.month, later.day, 12, tzinfo=UTC)
    decisions_insert([row(experiment, "future", when)])
    after = later + timedelta(days=2)
    dropped = partitions.partitions_drop_empty(after)  # every empty day before it, the next one included
    assert f"experiments_decision_p{later + timedelta(days=1):%Y%m%d}" in dropped
    assert f"experiments_decision_p{later:%Y%m%d}" not in dropped
    Decision.objects.filter(decision_id="future").delete()
    assert partitions.partitions_drop_empty(after) == [f"experiments_decision_p{later:%Y%m%d}"]
    assert later not in {p.start for p in partitions.partitions_list()}
    decisions_insert([row(experiment, "late", when)])  # its day's partition is gone: the default takes it
    assert partition_of("late") == "experiments_decision_default"


def test_a_time_ranged_read_touches_only_the_partitions_of_its_range(experiment):
    today = datetime.now(UTC).date()
    past = today - timedelta(days=3)
    partitions.partitions_ensure(past, ahead=0)
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
    assert partitions.partitions_list()[0].start == (now - timedelta(days=2)).date()  # from the oldest stored day
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
    first = partitions.partitions_list()[0].start
    count = len(partitions.partitions_list())
    assert out[1] == (
        f"experiments_decision: {count} day partitions, {first} … {today + timedelta(days=7)}, and a default partition"
    )
    months = partitions.partitions_list(partitions.SNAPSHOTS)
    next_month = partitions.SNAPSHOTS.following(today.replace(day=1))
    assert out[2] == (
        f"experiments_allocationsnapshot: {len(months)} month partitions, {months[0].start} … {next_month}, "
        "and a default partition"
    )
    assert len(out) == 3


# --------------------------------------------------------------------------- allocation snapshots
@pytest.fixture
def no_snapshots(experiment):
    """The experiment without the snapshot its creation took."""
    AllocationSnapshot.objects.all().delete()
    return experiment


def snapshot(experiment, when: datetime) -> AllocationSnapshot:
    series = {name: [0.5, 0.5] for name in AllocationSnapshot.SERIES}
    made = AllocationSnapshot.build(experiment_id=experiment.pk, created_at=when, policy_version=1, **series)
    made.save()
    return made


def snapshot_partition_of(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM experiments_allocationsnapshot WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def months(scheme_list) -> list[str]:
    return [f"{p.start:%Y-%m}" for p in scheme_list]


def test_snapshots_go_to_the_partition_of_their_month(experiment):
    assert partitions.partitioned(partitions.SNAPSHOTS)
    this_month = datetime.now(UTC).date().replace(day=1)
    following = partitions.SNAPSHOTS.following(this_month)
    assert months(partitions.partitions_list(partitions.SNAPSHOTS))[-2:] == [
        f"{this_month:%Y-%m}",
        f"{following:%Y-%m}",
    ]
    now = snapshot(experiment, datetime.now(UTC))
    old = snapshot(experiment, datetime.now(UTC) - timedelta(days=400))
    assert snapshot_partition_of(now.pk) == f"experiments_allocationsnapshot_p{this_month:%Y%m}"
    assert snapshot_partition_of(old.pk) == "experiments_allocationsnapshot_default"
    assert now.pk != old.pk and AllocationSnapshot.objects.get(pk=now.pk).values["allocation"] == [0.5, 0.5]


def test_the_chart_reads_only_the_months_of_its_range(no_snapshots):
    experiment = no_snapshots
    from mabdash.dashboard.selectors.snapshots import snapshot_series

    this_month = datetime.now(UTC).date().replace(day=1)
    earlier = this_month - timedelta(days=40)  # two months back
    partitions.partitions_create(earlier, this_month, partitions.SNAPSHOTS)
    old = snapshot(experiment, datetime(earlier.year, earlier.month, 3, tzinfo=UTC))
    recent = [snapshot(experiment, datetime.now(UTC) - timedelta(seconds=n)) for n in (30, 20, 10)]
    since = datetime.now(UTC) - timedelta(minutes=5)
    with CaptureQueriesContext(connection) as queries:
        assert [p["created_at"] for p in snapshot_series(experiment.pk, since)] == [s.created_at for s in recent]
    assert [p["created_at"] for p in snapshot_series(experiment.pk, None)] == [old.created_at] + [
        s.created_at for s in recent
    ]
    for query in queries.captured_queries:  # every read of the recent chart: only this month's partition
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plan = "\n".join(line[0] for line in cursor.fetchall())
        assert f"experiments_allocationsnapshot_p{this_month:%Y%m}" in plan
        assert f"experiments_allocationsnapshot_p{earlier:%Y%m}" not in plan, query["sql"]


def test_expired_snapshot_months_are_dropped_whole_and_a_month_with_younger_rows_is_kept(no_snapshots, settings):
    experiment = no_snapshots
    settings.MABDASH = {**settings.MABDASH, "SNAPSHOT_RETENTION_DAYS": 45}
    now = datetime(2031, 5, 10, 12, tzinfo=UTC)  # 45 days earlier: 2031-03-26, in March
    partitions.partitions_create(datetime(2031, 1, 1).date(), now.date(), partitions.SNAPSHOTS)
    january, february, march, may = (
        snapshot(experiment, datetime(2031, month, 15, tzinfo=UTC)) for month in (1, 2, 3, 5)
    )
    stray = snapshot(experiment, datetime(2030, 6, 1, tzinfo=UTC))  # in the default partition
    assert snapshot_partition_of(stray.pk) == "experiments_allocationsnapshot_default"
    assert retention.snapshots_boundary(now) == datetime(2031, 3, 1, tzinfo=UTC)
    with connection.cursor() as cursor:
        # The foreign key checks are deferred to the commit, and PostgreSQL will not drop a table
        # with checks pending; in production the rows were committed long before.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    dropped = retention.snapshots_expire(now)
    assert {"experiments_allocationsnapshot_p203101", "experiments_allocationsnapshot_p203102"} <= set(dropped)
    assert AllocationSnapshot.objects.count() == 2
    kept = set(AllocationSnapshot.objects.values_list("pk", flat=True))
    assert kept == {march.pk, may.pk} and not kept & {january.pk, february.pk, stray.pk}
    assert months(partitions.partitions_list(partitions.SNAPSHOTS))[:1] == ["2031-03"]
    assert retention.snapshots_expire(now) == []  # nothing left to drop


def test_without_snapshot_retention_every_snapshot_is_kept(experiment, settings):
    settings.MABDASH = {**settings.MABDASH, "SNAPSHOT_RETENTION_DAYS": None}
    old = snapshot(experiment, datetime.now(UTC) - timedelta(days=4000))
    assert retention.snapshots_boundary() is None
    assert retention.snapshots_expire() == []
    assert AllocationSnapshot.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_snapshots_into_month_partitions_and_back(no_snapshots):
    experiment = no_snapshots
    from django.db.migrations.executor import MigrationExecutor

    def migrate(target: str) -> None:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("experiments", target)])

    def foreign_keys() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'experiments_allocationsnapshot'::regclass AND contype = 'f'"
            )
            return [row[0] for row in cursor.fetchall()]

    now = datetime.now(UTC)
    migrate("0009_partition_decisions")
    assert not partitions.partitioned(partitions.SNAPSHOTS)
    assert foreign_keys() == [
        "FOREIGN KEY (experiment_id) REFERENCES experiments_experiment(id) DEFERRABLE INITIALLY DEFERRED"
    ]
    old, new = snapshot(experiment, now - timedelta(days=70)), snapshot(experiment, now)
    migrate("0010_partition_snapshots")
    assert partitions.partitioned(partitions.SNAPSHOTS)
    oldest = (now - timedelta(days=70)).date().replace(day=1)
    assert snapshot_partition_of(old.pk) == f"experiments_allocationsnapshot_p{oldest:%Y%m}"
    assert snapshot_partition_of(new.pk) == f"experiments_allocationsnapshot_p{now:%Y%m}"
    assert partitions.partitions_list(partitions.SNAPSHOTS)[0].start == oldest  # from the oldest stored month
    assert foreign_keys() == [
        "FOREIGN KEY (experiment_id) REFERENCES experiments_experiment(id) DEFERRABLE INITIALLY DEFERRED"
    ]
    assert snapshot(experiment, now).pk == new.pk + 1  # the id sequence continues past the copied rows
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'experiments_allocationsnapshot'")
        names = {r[0] for r in cursor.fetchall()}
    assert {"snapshot_exp_time", "experiments_allocationsnapshot_pkey"} <= names
    migrate("0009_partition_decisions")
    assert not partitions.partitioned(partitions.SNAPSHOTS)
    assert AllocationSnapshot.objects.count() == 3
    assert snapshot(experiment, now).pk == new.pk + 2
    migrate("0010_partition_snapshots")
