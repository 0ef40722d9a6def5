"""Celery tasks of the experiments app: thin wrappers, idempotent.

Learning runs are ``mabdash.control.tasks.learning_cycle_task``: learning and the guardrails
that act on it are sequenced by the control layer.
"""

from __future__ import annotations

from celery import shared_task

from mabdash.experiments.services.checkpoints import checkpoints_take_due
from mabdash.experiments.services.learning import snapshots_take
from mabdash.experiments.services.partitions import partitions_maintain
from mabdash.experiments.services.retention import retention_sweep, snapshots_expire


@shared_task(ignore_result=True)
def snapshots_take_task() -> int:
    """Beat: a snapshot per running experiment at least every minute, for flat-line charts."""
    return snapshots_take(min_seconds=60.0)


@shared_task(ignore_result=True)
def retention_sweep_task() -> None:
    """Beat (hourly): archive and drop rows past each experiment's retention, drop expired
    snapshot months, checkpoint experiments that learned enough since their last checkpoint,
    and keep the partitions (create the coming periods', drop emptied decision days)."""
    retention_sweep()
    snapshots_expire()
    checkpoints_take_due()
    partitions_maintain()
