"""Checkpoints and retention: rows are archived before they are dropped, the rebuild stays exact."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mabdash.accounts.authentication import principal_for_key
from mabdash.experiments.models import (
    AllocationSnapshot,
    AuditEntry,
    Decision,
    PolicyCheckpoint,
    PolicyState,
    RetentionRun,
    Reward,
    RewardKey,
)
from mabdash.experiments.services import checkpoints, learning, rebuild, retention
from mabdash.experiments.services.decision_log import decision_buffer
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.services.rewards import rewards_record

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def archive(settings, tmp_path):
    settings.MABDASH = {**settings.MABDASH, "ARCHIVE_DIR": tmp_path / "archive", "LEARNING_BATCH": 40}
    return tmp_path / "archive"


@pytest.fixture
def principal(client_key):
    return principal_for_key(client_key)


def post(principal, slug: str, start: int, n: int, **extra) -> list[str]:
    """Post n rewards with event ids ``<slug>-<start>`` … ; return the ids."""
    items = [
        {"experiment": slug, "arm": i % 3, "value": float(i % 7 < 3), "event_id": f"{slug}-{i}", **extra}
        for i in range(start, start + n)
    ]
    assert {o.status for o in rewards_record(items, principal)} == {"accepted"}
    return [item["event_id"] for item in items]


def age(model, days: float, **where) -> None:
    """Move rows back in time (as if stored ``days`` before NOW); a reward's key with it."""
    field = "created_at" if model is Decision else "received_at"
    if model is Reward:
        for experiment_id, event_id in Reward.objects.filter(**where).values_list("experiment_id", "event_id"):
            RewardKey.objects.filter(experiment_id=experiment_id, event_id=event_id).update(
                received_at=NOW - timedelta(days=days)
            )
    model.objects.filter(**where).update(**{field: NOW - timedelta(days=days)})


def read_archive(path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as text:
        return list(csv.DictReader(text))


def test_a_checkpoint_is_written_only_when_the_ledger_reproduces_the_live_state(experiment, principal, archive):
    post(principal, "churn", 0, 100)
    learning.rewards_learn(experiment.pk)
    checkpoint = checkpoints.checkpoint_take(experiment.pk, reason="test")
    live = PolicyState.objects.get(experiment=experiment)
    assert (checkpoint.version, checkpoint.applied_count, checkpoint.state) == (live.version, 100, live.state)
    assert checkpoints.checkpoint_take(experiment.pk, reason="again").pk == checkpoint.pk  # one per version

    post(principal, "churn", 100, 50)
    learning.rewards_learn(experiment.pk)
    rebuilt = rebuild.policy_rebuild(experiment.pk)
    assert rebuilt.checkpoint_version == checkpoint.version
    assert rebuilt.matches(PolicyState.objects.get(experiment=experiment))
    assert rebuilt.applied_count == 150
    from_start = rebuild.policy_rebuild(experiment.pk, from_start=True)
    assert from_start.policy.get_state() == rebuilt.policy.get_state()

    # A live state the ledger does not produce gets no checkpoint.
    state = PolicyState.objects.get(experiment=experiment)
    state.state = {**state.state, "sums": [s + 1 for s in state.state["sums"]]}
    state.save()
    with pytest.raises(checkpoints.CheckpointRefused, match=r"differs from the ledger's rebuild"):
        checkpoints.checkpoint_take(experiment.pk, reason="test")
    assert PolicyCheckpoint.objects.filter(experiment=experiment).count() == 1


def test_beat_checkpoints_experiments_that_learned_enough_since_their_last_one(experiment, principal, settings):
    settings.MABDASH = {**settings.MABDASH, "CHECKPOINT_EVERY_REWARDS": 60}
    post(principal, "churn", 0, 59)
    learning.rewards_learn(experiment.pk)
    assert checkpoints.checkpoints_take_due() == 0
    post(principal, "churn", 59, 1)
    learning.rewards_learn(experiment.pk)
    assert checkpoints.checkpoints_take_due() == 1
    assert checkpoints.checkpoints_take_due() == 0
    post(principal, "churn", 60, 60)
    learning.rewards_learn(experiment.pk)
    assert checkpoints.checkpoints_take_due() == 1
    assert list(PolicyCheckpoint.objects.values_list("applied_count", "reason")) == [
        (60, "periodic"),
        (120, "periodic"),
    ]


@pytest.mark.django_db(transaction=True)
def test_retention_archives_exactly_what_it_drops_and_the_rebuild_stays_exact(experiment, principal, archive):
    experiment.retention_days = 30
    experiment.save()
    for _ in range(12):
        decide("churn", principal)
    decision_buffer.flush()
    old_decisions = list(Decision.objects.order_by("decision_id").values_list("decision_id", flat=True)[:7])
    age(Decision, 31, decision_id__in=old_decisions)

    learned_old = post(principal, "churn", 0, 90)
    learning.rewards_learn(experiment.pk)
    late = post(principal, "churn", 90, 5)
    Reward.objects.filter(event_id__in=late).update(learn=False)  # late rewards: stored, never learned
    age(Reward, 45, event_id__in=learned_old + late)
    pending_old = post(principal, "churn", 95, 4)  # old but not learned yet: must stay
    age(Reward, 40, event_id__in=pending_old)
    recent = post(principal, "churn", 99, 10)
    learning.rewards_learn(experiment.pk)  # pending_old is learned now: old and learned, so archived
    pending_again = post(principal, "churn", 109, 3)
    age(Reward, 40, event_id__in=pending_again)  # still pending when retention runs

    result = retention.retention_apply(experiment.pk, now=NOW)

    live = PolicyState.objects.get(experiment=experiment)
    assert result is not None
    assert (result.decisions, result.rewards, result.checkpoint_version) == (7, 95 + 4, live.version)
    assert result.boundary == NOW - timedelta(days=30)
    run = RetentionRun.objects.get()
    assert (run.run_id, run.decisions, run.rewards, run.archive) == (result.run_id, 7, 99, str(result.archive))
    assert result.archive == archive / "churn" / result.run_id

    rewards_file = read_archive(result.archive / "rewards.csv.gz")
    assert sorted(row["event_id"] for row in rewards_file) == sorted(learned_old + late + pending_old)
    assert {row["learn"] for row in rewards_file if row["event_id"] in late} == {"false"}
    assert list(rewards_file[0]) == [
        "id",
        "event_id",
        "arm",
        "model",
        "model_version",
        "decision_id",
        "value",
        "trials",
        "decided_at",
        "observed_at",
        "received_at",
        "learn",
        "applied_version",
    ]
    assert (rewards_file[0]["model"], rewards_file[0]["model_version"]) == ("churn", "1")
    decisions_file = read_archive(result.archive / "decisions.csv.gz")
    assert sorted(row["decision_id"] for row in decisions_file) == old_decisions
    manifest = json.loads((result.archive / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (result.archive / entry["name"]).read_bytes()
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert [(f["name"], f["rows"]) for f in manifest["files"]] == [("decisions.csv.gz", 7), ("rewards.csv.gz", 99)]
    assert manifest["checkpoint_version"] == live.version

    # What stays: the recent rows and every reward not yet learned, whatever its age.
    assert sorted(Reward.objects.values_list("event_id", flat=True)) == sorted(recent + pending_again)
    # The archived rewards' idempotency keys went with them, and only theirs.
    assert sorted(RewardKey.objects.values_list("event_id", flat=True)) == sorted(recent + pending_again)
    assert Decision.objects.count() == 5
    entry = AuditEntry.objects.get(kind="retention")
    assert entry.summary == (
        f"Archived 7 decisions and 99 rewards from before 2026-10-31 12:00 UTC to {result.archive}; "
        f"the policy state is checkpointed at version {live.version}."
    )

    # The rebuild starts at the checkpoint and is still exact; learning goes on after it.
    learning.rewards_learn(experiment.pk)
    post(principal, "churn", 112, 20)
    learning.rewards_learn(experiment.pk)
    rebuilt = rebuild.policy_rebuild(experiment.pk)
    live = PolicyState.objects.get(experiment=experiment)
    assert rebuilt.checkpoint_version == result.checkpoint_version
    assert rebuilt.matches(live)
    assert rebuilt.applied_count == live.applied_count == 127
    with pytest.raises(rebuild.RebuildImpossible, match="archived by retention"):
        rebuild.policy_rebuild(experiment.pk, from_start=True)

    # A second run finds nothing new to archive and never archives a row twice.
    again = retention.retention_apply(experiment.pk, now=NOW)
    assert again is not None
    assert (again.decisions, again.rewards) == (0, 3)  # pending_again, learned since
    assert sorted(r["event_id"] for r in read_archive(again.archive / "rewards.csv.gz")) == sorted(pending_again)
    # An event id is refused as a duplicate for as long as its reward is stored, not longer.
    assert post(principal, "churn", 0, 1) == learned_old[:1]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_before_commit_keeps_every_row_and_its_files_are_discarded(
    experiment, principal, archive, monkeypatch
):
    experiment.retention_days = 1
    experiment.save()
    old = post(principal, "churn", 0, 30)
    learning.rewards_learn(experiment.pk)
    age(Reward, 2, event_id__in=old)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(retention, "audit_record", crash)  # the last step before the commit
    with pytest.raises(RuntimeError, match="disk full"):
        retention.retention_apply(experiment.pk, now=NOW)
    assert Reward.objects.count() == RewardKey.objects.count() == 30
    assert RetentionRun.objects.count() == 0
    (failed,) = (archive / "churn").iterdir()
    assert (failed / "rewards.csv.gz").exists()  # written, but the run did not commit

    monkeypatch.undo()
    result = retention.retention_apply(experiment.pk, now=NOW)
    assert result is not None and result.rewards == 30
    assert [d.name for d in (archive / "churn").iterdir()] == [result.run_id]
    assert Reward.objects.count() == RewardKey.objects.count() == 0


def test_snapshots_older_than_their_retention_go_by_whole_months_on_every_database(experiment, settings):
    """The same boundary on SQLite (a DELETE) as on PostgreSQL (partitions dropped, see
    test_partitions): the month that holds NOW − 20 days is kept whole."""
    settings.MABDASH = {**settings.MABDASH, "SNAPSHOT_RETENTION_DAYS": 20}  # NOW − 20 days = 2026-11-10
    AllocationSnapshot.objects.all().delete()
    series = {name: [1.0, 0.0, 0.0] for name in AllocationSnapshot.SERIES}
    for when in ("2026-09-30T23:59:59", "2026-10-31T23:59:59", "2026-11-01T00:00:00", "2026-11-30T11:00:00"):
        moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
        AllocationSnapshot.build(experiment_id=experiment.pk, created_at=moment, policy_version=1, **series).save()
    assert retention.snapshots_boundary(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    retention.snapshots_expire(NOW)
    kept = sorted(AllocationSnapshot.objects.values_list("created_at", flat=True))
    assert [f"{moment:%Y-%m-%d %H:%M:%S}" for moment in kept] == ["2026-11-01 00:00:00", "2026-11-30 11:00:00"]


@pytest.mark.django_db(transaction=True)
def test_a_strategy_switch_after_retention_learns_the_retained_ledger_and_rebuilds_exactly(
    experiment, principal, archive
):
    experiment.retention_days = 1
    experiment.save()
    old = post(principal, "churn", 0, 50)
    learning.rewards_learn(experiment.pk)
    age(Reward, 2, event_id__in=old)
    retention.retention_apply(experiment.pk, now=NOW)
    post(principal, "churn", 50, 40)
    learning.rewards_learn(experiment.pk)
    with learning.policy_session(experiment.pk) as session:
        session.reconfigure("ucb1", {}, 0)
    post(principal, "churn", 90, 10)
    learning.rewards_learn(experiment.pk)
    live = PolicyState.objects.get(experiment=experiment)
    assert live.state["kind"] == "ucb1"
    assert sum(live.state["counts"]) == 50  # the 40 retained before the switch and the 10 after
    assert rebuild.policy_rebuild(experiment.pk).matches(live)


def test_experiments_without_retention_are_left_alone(experiment, principal, archive, settings):
    post(principal, "churn", 0, 10)
    age(Reward, 400)
    assert retention.retention_apply(experiment.pk, now=NOW) is None
    settings.MABDASH = {**settings.MABDASH, "RETENTION_DAYS": 365}
    assert retention.retention_days(experiment) == 365
    experiment.retention_days = 500
    assert retention.retention_days(experiment) == 500


@pytest.mark.django_db(transaction=True)
def test_the_commands_report_what_they_did(experiment, principal, archive, capsys):
    old = post(principal, "churn", 0, 25)
    learning.rewards_learn(experiment.pk)
    call_command("retention", "churn")
    assert capsys.readouterr().out == "churn: no retention set (keeps everything)\n"
    experiment.retention_days = 3
    experiment.save()
    Reward.objects.filter(event_id__in=old).update(received_at=timezone.now() - timedelta(days=4))
    call_command("retention", "churn")
    run = RetentionRun.objects.get()
    out = capsys.readouterr().out
    assert out.startswith("churn: archived 0 decisions and 25 rewards from before ")
    assert out.endswith(f" UTC to {run.archive} (checkpoint at version {run.checkpoint_version})\n")
    call_command("rebuild_policy_state", "churn")
    assert capsys.readouterr().out == (
        f"churn: identical (version {run.checkpoint_version}, 25 rewards, replayed from the checkpoint at "
        f"version {run.checkpoint_version})\n"
    )
    with pytest.raises(CommandError, match="churn: rewards were archived by retention"):
        call_command("rebuild_policy_state", "--from-start", "churn")
    with pytest.raises(CommandError, match="no experiment nope"):
        call_command("retention", "nope")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_archived_period_loads_into_the_documented_tables(experiment, principal, archive):
    from pathlib import Path

    from django.db import connection

    experiment.retention_days = 1
    experiment.save()
    for _ in range(4):
        decide("churn", principal)
    decision_buffer.flush()
    age(Decision, 2)
    old = post(principal, "churn", 0, 40)
    learning.rewards_learn(experiment.pk)
    age(Reward, 2, event_id__in=old)
    result = retention.retention_apply(experiment.pk, now=NOW)
    assert result is not None
    ddl = (Path(__file__).parents[3] / "docs" / "sql" / "archive_tables.sql").read_text()
    with connection.cursor() as cursor:
        cursor.execute(ddl)
        for table, name in (("archived_decisions", "decisions.csv.gz"), ("archived_rewards", "rewards.csv.gz")):
            with cursor.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
                copy.write(gzip.decompress((result.archive / name).read_bytes()))
        cursor.execute("SELECT count(*), sum(value), bool_and(learn) FROM archived_rewards")
        assert cursor.fetchone() == (40, float(sum(i % 7 < 3 for i in range(40))), True)
        cursor.execute(
            "SELECT count(*), bool_and(arm BETWEEN 0 AND 2 AND propensity > 0 AND propensity <= 1 AND model = 'churn') "
            "FROM archived_decisions"
        )
        assert cursor.fetchone() == (4, True)
        cursor.execute("DROP TABLE archived_decisions, archived_rewards")


@pytest.mark.postgres
def test_the_dropped_rewards_keys_are_looked_up_by_primary_key_not_read_in_full(experiment):
    """A day's retention deletes that day's keys by (experiment, event id): the experiment's
    other keys (a month of them in production) are not read to find them."""
    from django.db import connection

    RewardKey.objects.bulk_create(
        RewardKey(experiment=experiment, event_id=f"k-{i}", received_at=NOW - timedelta(days=i % 30))
        for i in range(20_000)
    )
    params = {"experiment": experiment.pk, "boundary": NOW - timedelta(days=29), "version": 0}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE experiments_rewardkey")
        cursor.execute("EXPLAIN " + retention._REWARD_KEYS_DROP["postgresql"], params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using experiments_rewardkey_pkey" in plan, plan
    assert "event_id)::text = ANY" in plan, plan
    assert "Seq Scan on experiments_rewardkey" not in plan and "Hash" not in plan, plan
