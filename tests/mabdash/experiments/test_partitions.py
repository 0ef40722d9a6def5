"""The ledgers' time partitions on PostgreSQL: decisions by day (routing, idempotent writes,
partitions made ahead, emptied days dropped, time-ranged reads pruned), rewards by day
(routing, idempotency across days through the key table, emptied days dropped) and
allocation snapshots by month (routing, pruned chart reads, expired months dropped whole)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from mabdash.accounts.authentication import principal_for_key
from mabdash.experiments.models import AllocationSnapshot, Decision, Reward, RewardKey
from mabdash.experiments.services import learning, partitions, retention
from mabdash.experiments.services.decision_log import decisions_insert
from mabdash.experiments.services.rewards import rewards_record

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


def migrate(target: str | None) -> None:
    """Migrate the experiments app to ``target`` (None: its latest migration)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    if target is None:
        (target,) = [name for app, name in executor.loader.graph.leaf_nodes() if app == "experiments"]
    executor.migrate([("experiments", target)])


@pytest.fixture
def latest_schema_after():
    """Every later test expects the latest schema, whatever a migration test leaves."""
    yield
    migrate(None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_schema_after")
def test_the_migration_moves_existing_decisions_into_day_partitions_and_back(experiment):
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
    days = partitions.partitions_list(partitions.REWARDS)
    assert out[2] == (
        f"experiments_reward: {len(days)} day partitions, {days[0].start} … {today + timedelta(days=7)}, "
        "and a default partition"
    )
    months = partitions.partitions_list(partitions.SNAPSHOTS)
    next_month = partitions.SNAPSHOTS.following(today.replace(day=1))
    assert out[3] == (
        f"experiments_allocationsnapshot: {len(months)} month partitions, {months[0].start} … {next_month}, "
        "and a default partition"
    )
    assert len(out) == 4


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
@pytest.mark.usefixtures("latest_schema_after")
def test_the_migration_moves_snapshots_into_month_partitions_and_back(no_snapshots):
    experiment = no_snapshots

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


# --------------------------------------------------------------------------- rewards


def reward_partition_of(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM experiments_reward WHERE event_id = %s", [event_id])
        return cursor.fetchone()[0]


def statuses(principal, items: list[dict]) -> list[str]:
    return [outcome.status for outcome in rewards_record(items, principal)]


def move_to(day: datetime, event_ids: list[str]) -> None:
    """Move stored rewards (and their keys) to another day, as if received then."""
    Reward.objects.filter(event_id__in=event_ids).update(received_at=day)
    RewardKey.objects.filter(event_id__in=event_ids).update(received_at=day)


def test_rewards_go_to_the_partition_of_their_day_and_a_retry_on_another_day_is_still_a_duplicate(
    experiment, client_key
):
    principal = principal_for_key(client_key)
    assert partitions.partitioned(partitions.REWARDS)
    today = datetime.now(UTC)
    item = {"experiment": experiment.slug, "arm": 1, "value": 1.0, "event_id": "e-1"}
    assert statuses(principal, [item, {**item, "event_id": "e-2"}]) == ["accepted", "accepted"]
    assert reward_partition_of("e-1") == f"experiments_reward_p{today:%Y%m%d}"
    # The first attempt was stored just before midnight; its retry arrives the next day and
    # would go to another partition: the key table still knows the event id.
    yesterday = today - timedelta(days=1)
    partitions.partitions_create(yesterday.date(), yesterday.date(), partitions.REWARDS)
    move_to(yesterday, ["e-1"])
    assert reward_partition_of("e-1") == f"experiments_reward_p{yesterday:%Y%m%d}"
    conflicting = {**item, "value": 0.0}
    assert statuses(principal, [item, conflicting, {**item, "event_id": "e-3"}]) == [
        "duplicate",
        "conflict",
        "accepted",
    ]
    assert Reward.objects.filter(event_id="e-1").count() == 1
    assert sorted(RewardKey.objects.values_list("event_id", flat=True)) == ["e-1", "e-2", "e-3"]
    assert RewardKey.objects.get(experiment=experiment, event_id="e-1").received_at == yesterday


@pytest.mark.django_db(transaction=True)  # a partition is dropped in a transaction of its own
def test_emptied_past_reward_days_are_dropped_and_a_day_with_a_pending_reward_is_kept(experiment, client_key):
    principal = principal_for_key(client_key)
    today = datetime.now(UTC).date()
    old_day = today - timedelta(days=10)
    older_day = today - timedelta(days=11)
    partitions.partitions_create(older_day, old_day, partitions.REWARDS)
    items = [{"experiment": experiment.slug, "arm": i % 3, "value": 1.0, "event_id": f"r-{i}"} for i in range(4)]
    assert set(statuses(principal, items)) == {"accepted"}
    move_to(datetime(old_day.year, old_day.month, old_day.day, 12, tzinfo=UTC), ["r-0", "r-1"])
    move_to(datetime(older_day.year, older_day.month, older_day.day, 12, tzinfo=UTC), ["r-2"])
    learning.rewards_learn(experiment.pk)
    Reward.objects.filter(event_id="r-2").update(applied_version=None)  # still pending: must stay
    Reward.objects.filter(event_id__in=["r-0", "r-1"]).delete()  # what retention does after archiving
    _, dropped = partitions.partitions_maintain()
    assert f"experiments_reward_p{old_day:%Y%m%d}" in dropped
    assert f"experiments_reward_p{older_day:%Y%m%d}" not in dropped
    assert reward_partition_of("r-2") == f"experiments_reward_p{older_day:%Y%m%d}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_schema_after")
def test_the_migration_moves_rewards_into_day_partitions_with_their_keys_and_back(experiment):
    def constraints() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'experiments_reward'::regclass AND contype IN ('f', 'u') ORDER BY 1"
            )
            return [row[0] for row in cursor.fetchall()]

    def store(event_id: str, when: datetime) -> Reward:
        return Reward.objects.create(
            event_id=event_id, experiment=experiment, arm=arm, value=1.0, received_at=when, applied_version=1
        )

    arm = experiment.arms.get(position=0)
    now = datetime.now(UTC)
    migrate("0010_partition_snapshots")
    before = constraints()
    assert "UNIQUE (experiment_id, event_id)" in before
    old, new = store("old", now - timedelta(days=3)), store("new", now)
    migrate("0011_reward_key_and_partitions")
    assert partitions.partitioned(partitions.REWARDS)
    assert reward_partition_of("old") == f"experiments_reward_p{now - timedelta(days=3):%Y%m%d}"
    assert reward_partition_of("new") == f"experiments_reward_p{now:%Y%m%d}"
    assert partitions.partitions_list(partitions.REWARDS)[0].start == (now - timedelta(days=3)).date()
    assert partitions.partitions_list(partitions.REWARDS)[-1].start == now.date() + timedelta(days=7)
    assert constraints() == [c for c in before if not c.startswith("UNIQUE")]  # both foreign keys kept
    assert sorted(RewardKey.objects.values_list("event_id", "received_at")) == [
        ("new", new.received_at),
        ("old", old.received_at),
    ]
    assert store("later", now).pk == new.pk + 1  # the id sequence continues past the copied rows
    migrate("0010_partition_snapshots")
    assert not partitions.partitioned(partitions.REWARDS)
    assert constraints() == before
    assert sorted(Reward.objects.values_list("event_id", flat=True)) == ["later", "new", "old"]
    assert store("again", now).pk == new.pk + 2


def test_learning_marks_its_rewards_in_the_days_they_were_received_only(experiment, client_key):
    """The claim marks rewards by id within their days: it must not probe every day's
    partition of the reward ledger for every id (twice as slow on a month of ledger)."""
    from django.test.utils import CaptureQueriesContext

    principal = principal_for_key(client_key)
    today = datetime.now(UTC).date()
    partitions.partitions_create(today - timedelta(days=20), today, partitions.REWARDS)
    items = [{"experiment": experiment.slug, "arm": i % 3, "value": 1.0, "event_id": f"l-{i}"} for i in range(30)]
    assert set(statuses(principal, items)) == {"accepted"}
    with CaptureQueriesContext(connection) as queries:
        assert learning.rewards_learn(experiment.pk).applied == 30
    (claim,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE experiments_reward")]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {claim}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"experiments_reward_p{today:%Y%m%d}" in plan, plan
    assert f"experiments_reward_p{today - timedelta(days=1):%Y%m%d}" not in plan and "default" not in plan, plan
    assert Reward.objects.filter(applied_version__isnull=True).count() == 0
