"""Retention: archive raw decisions and rewards past the boundary, then drop them.

One run per experiment, in this order — nothing is dropped that is neither in the policy
state's checkpoint nor in a durable archive:

1. Checkpoint the live policy state, proven against the ledger (``checkpoints``): every
   reward learned at or below its version ``V`` is in it.
2. In one transaction on one snapshot (REPEATABLE READ on PostgreSQL; SQLite holds its one
   write lock): write the decisions created before the boundary and the rewards received
   before it that are learned at or below ``V`` (or late, never to be learned) to gzipped
   CSV files, fsync them, delete exactly the same rows, write the manifest and record the
   run. A reward still waiting to be learned is kept, whatever its age.
3. Commit. A run that dies before the commit leaves files but no ``RetentionRun``; its rows
   are still stored, and the next run deletes those files first.

Archive layout: ``<ARCHIVE_DIR>/<experiment slug>/<run id>/`` holding ``decisions.csv.gz``,
``rewards.csv.gz`` (times in UTC) and ``manifest.json`` (rows, bytes and SHA-256 per file,
the boundary, the checkpoint version). docs/OPERATIONS.md shows how to read and restore one.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from mabdash.experiments.models import (
    AllocationSnapshot,
    Arm,
    Decision,
    Experiment,
    ModelVersion,
    RetentionRun,
    Reward,
    RewardKey,
)
from mabdash.experiments.services import partitions
from mabdash.experiments.services.audit import audit_record
from mabdash.experiments.services.checkpoints import CheckpointRefused, checkpoint_take

logger = logging.getLogger(__name__)

#: Advisory-lock namespace of retention runs (one run per experiment at a time).
_LOCK_NAMESPACE = 0x6D61_6264  # "mabd"

_ARMS = (
    f"JOIN {Arm._meta.db_table} a ON a.id = t.arm_id JOIN {ModelVersion._meta.db_table} m ON m.id = a.model_version_id"
)
_DECISIONS = (
    "SELECT t.decision_id, a.position AS arm, m.name AS model, m.version AS model_version, t.propensity, "
    f"t.policy_version, t.served_by, t.created_at FROM {Decision._meta.db_table} t {_ARMS} "
    "WHERE t.experiment_id = %(experiment)s AND t.created_at < %(boundary)s ORDER BY t.created_at, t.decision_id"
)
_DECISIONS_DROP = (
    f"DELETE FROM {Decision._meta.db_table} WHERE experiment_id = %(experiment)s AND created_at < %(boundary)s"
)
_REWARDS_WHERE = (
    "t.experiment_id = %(experiment)s AND t.received_at < %(boundary)s "
    "AND (t.applied_version <= %(version)s OR NOT t.learn)"
)
_REWARDS = (
    "SELECT t.id, t.event_id, a.position AS arm, m.name AS model, m.version AS model_version, t.decision_id, "
    "t.value, t.trials, t.decided_at, t.observed_at, t.received_at, "
    "CASE WHEN t.learn THEN 'true' ELSE 'false' END AS learn, t.applied_version "
    f"FROM {Reward._meta.db_table} t {_ARMS} WHERE {_REWARDS_WHERE} ORDER BY t.id"
)
_REWARDS_DROP = f"DELETE FROM {Reward._meta.db_table} t WHERE {_REWARDS_WHERE}"
# The dropped rewards' idempotency keys go with them: an event id is a duplicate for exactly
# as long as its reward is stored.
_DROPPED_EVENT_IDS = f"SELECT t.event_id FROM {Reward._meta.db_table} t WHERE {_REWARDS_WHERE}"
_KEYS_DELETE = f"DELETE FROM {RewardKey._meta.db_table} WHERE experiment_id = %(experiment)s AND event_id"
# On PostgreSQL the dropped event ids are collected first, then each key is looked up by its
# primary key. As a semi-join the planner read every key of the experiment (a month of them)
# to find one day's: 19 ms against 7.7 ms on the long haul's small month, and a day's
# retention took 6.1 s on the full month (2.6 s since; bench.longhaul, docs/BENCHMARKS.md).
_REWARD_KEYS_DROP = {
    "postgresql": f"{_KEYS_DELETE} = ANY(ARRAY({_DROPPED_EVENT_IDS}))",
    "sqlite": f"{_KEYS_DELETE} IN ({_DROPPED_EVENT_IDS})",
}


@dataclass(frozen=True)
class ArchivedFile:
    """One file of an archive: its rows, size and checksum."""

    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class RetentionResult:
    """What a run archived and dropped."""

    slug: str
    run_id: str
    boundary: datetime
    checkpoint_version: int
    decisions: int
    rewards: int
    archive: Path


class RetentionMismatch(Exception):
    """The rows deleted are not the rows archived (never expected: the run is rolled back)."""


def retention_days(experiment: Experiment) -> int | None:
    """The experiment's retention in days: its own, else the global default; None keeps everything."""
    if experiment.retention_days is not None:
        return experiment.retention_days
    days: int | None = settings.MABDASH["RETENTION_DAYS"]
    return days


def retention_apply(experiment_id: int, *, now: datetime | None = None) -> RetentionResult | None:
    """Archive and drop the experiment's rows past its retention boundary; None without retention.

    Safe to run at any time and to repeat: rows still needed (pending rewards) are kept, a
    run that fails leaves everything stored, and nothing is ever archived twice.
    """
    experiment = Experiment.objects.get(pk=experiment_id)
    days = retention_days(experiment)
    if days is None:
        return None
    now = now or timezone.now()
    boundary = now - timedelta(days=days)
    checkpoint = checkpoint_take(experiment_id, reason="retention")
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    directory = Path(settings.MABDASH["ARCHIVE_DIR"]) / experiment.slug / run_id
    params = {"experiment": experiment_id, "boundary": boundary, "version": checkpoint.version}
    with _snapshot_transaction(experiment_id):
        _discard_uncommitted(experiment)
        run = RetentionRun.objects.create(
            experiment=experiment,
            run_id=run_id,
            boundary=boundary,
            checkpoint_version=checkpoint.version,
            decisions=0,
            rewards=0,
            archive=str(directory),
        )
        directory.mkdir(parents=True, exist_ok=True)
        decisions = _archive(directory / "decisions.csv.gz", _DECISIONS, params)
        rewards = _archive(directory / "rewards.csv.gz", _REWARDS, params)
        _drop(_DECISIONS_DROP, params, decisions.rows, "decisions")
        _drop(_REWARD_KEYS_DROP[connection.vendor], params, rewards.rows, "reward keys")
        _drop(_REWARDS_DROP, params, rewards.rows, "rewards")
        manifest = {
            "experiment": experiment.slug,
            "run_id": run_id,
            "boundary": boundary.isoformat(),
            "checkpoint_version": checkpoint.version,
            "created_at": now.isoformat(),
            "files": [vars(decisions), vars(rewards)],
        }
        _write_durably(directory / "manifest.json", json.dumps(manifest, indent=2).encode())
        run.decisions, run.rewards = decisions.rows, rewards.rows
        run.save(update_fields=["decisions", "rewards"])
        audit_record(
            "retention",
            "system",
            experiment=experiment,
            evidence=manifest,
            summary=(
                f"Archived {decisions.rows:,} decisions and {rewards.rows:,} rewards from before "
                f"{boundary:%Y-%m-%d %H:%M} UTC to {directory}; the policy state is checkpointed at "
                f"version {checkpoint.version}."
            ),
        )
    return RetentionResult(
        experiment.slug, run_id, boundary, checkpoint.version, decisions.rows, rewards.rows, directory
    )


@contextlib.contextmanager
def _snapshot_transaction(experiment_id: int) -> Iterator[None]:
    """One transaction that reads and deletes on the same snapshot, one run per experiment.

    On PostgreSQL, REPEATABLE READ: a DELETE touches only rows visible to the snapshot the
    export read, so a row written meanwhile is neither archived nor dropped. (Inside a
    caller's transaction — the test suite — the caller's isolation applies.) SQLite
    transactions are IMMEDIATE (settings): the run holds the one write lock throughout.
    """
    starts_transaction = transaction.get_autocommit()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if starts_transaction:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, experiment_id])
        yield


def _discard_uncommitted(experiment: Experiment) -> None:
    """Delete archive directories of runs that rolled back (their rows are still stored)."""
    root = Path(settings.MABDASH["ARCHIVE_DIR"]) / experiment.slug
    if not root.is_dir():
        return
    committed = set(RetentionRun.objects.filter(experiment=experiment).values_list("run_id", flat=True))
    for directory in root.iterdir():
        if directory.is_dir() and directory.name not in committed:
            shutil.rmtree(directory)


def _archive(path: Path, query: str, params: dict[str, Any]) -> ArchivedFile:
    """Write the query's rows as gzipped CSV with a header; fsync; return rows, size, checksum."""
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as zipped:
        rows = _copy_out(query, params, zipped)
        zipped.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, path)
    _fsync_directory(path.parent)
    digest = hashlib.sha256()
    with open(path, "rb") as stored:
        for block in iter(lambda: stored.read(1 << 20), b""):
            digest.update(block)
    return ArchivedFile(path.name, rows, path.stat().st_size, digest.hexdigest())


def _copy_out(query: str, params: dict[str, Any], out: Any) -> int:
    """Stream the query's rows as CSV into ``out``; return the row count."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = cursor.mogrify(query, params)
            with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    out.write(block)
            return int(cursor.rowcount)
        cursor.execute(query, params)
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow([column[0] for column in cursor.description])
        rows = 0
        while chunk := cursor.fetchmany(10_000):
            writer.writerows(chunk)
            rows += len(chunk)
        text.flush()
        text.detach()
        return rows


def _drop(statement: str, params: dict[str, Any], archived: int, what: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":  # SQLite: no alias on DELETE's table
            statement = statement.replace(" t WHERE", " WHERE").replace("t.", "")
        cursor.execute(statement, params)
        if cursor.rowcount != archived:
            raise RetentionMismatch(f"{what}: archived {archived} rows but the delete matched {cursor.rowcount}")


def _write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    _fsync_directory(path.parent)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def retention_sweep(now: datetime | None = None) -> list[RetentionResult]:
    """Apply retention to every experiment that has one (beat, hourly by default)."""
    results = []
    for experiment_id in Experiment.objects.order_by("pk").values_list("pk", flat=True):
        try:
            result = retention_apply(experiment_id, now=now)
        except CheckpointRefused:
            # Nothing was dropped; the others still run. An operator must look (rebuild_policy_state).
            logger.exception("retention of experiment %s refused", experiment_id)
            continue
        if result is not None:
            results.append(result)
    return results


def snapshots_boundary(now: datetime | None = None) -> datetime | None:
    """The start of the oldest UTC month of snapshots kept; None keeps them all.

    Whole months go, and only once every snapshot in them is older than
    ``SNAPSHOT_RETENTION_DAYS``: a chart keeps at least that many days of history.
    """
    days: int | None = settings.MABDASH["SNAPSHOT_RETENTION_DAYS"]
    if days is None:
        return None
    oldest_kept = ((now or timezone.now()) - timedelta(days=days)).date()
    return partitions.period_start_midnight(oldest_kept, partitions.SNAPSHOTS)


def snapshots_expire(now: datetime | None = None) -> list[str]:
    """Drop the allocation snapshots before :func:`snapshots_boundary`; return the partitions dropped.

    On PostgreSQL each expired month is one partition, dropped whole (no DELETE, no VACUUM);
    what remains before the boundary — rows in the default partition, or the plain SQLite
    table — is deleted.
    """
    boundary = snapshots_boundary(now)
    if boundary is None:
        return []
    dropped = partitions.partitions_drop_ended(boundary.date(), partitions.SNAPSHOTS)
    AllocationSnapshot.objects.filter(created_at__lt=boundary).delete()
    return dropped
