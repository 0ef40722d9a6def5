"""Celery tasks: thin, ids in, idempotent. The logic lives in ``learning``.

Learning is *requested* after a reward batch commits. A cache key per experiment marks a
run as queued or running; while it is set, further requests publish nothing. The run
clears the key when it has finished and then looks for rewards that arrived meanwhile. If
there are some, the experiment is under steady traffic: the next run is published to start
``LEARNING_MIN_INTERVAL_SECONDS`` after this one started, so rewards posted one at a time
are learned a few runs per second, in batches, instead of keeping the worker (and the
database) busy with one small run after another. A reward that arrives when no run is
queued is learned at once.

Only that follow-up run waits for a countdown. An idle worker holds no message, which
matters because kombu's Redis transport ends a worker that holds an unacknowledged message
when the broker goes away (docs/OPERATIONS.md).

Enqueueing is best effort — if the broker or cache is down the request is dropped, the
rewards are safe in the ledger, and beat's sweep picks them up. So a lost message, or a
worker killed with the key set, only delays learning (by at most the key's lifetime).
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from mabdash.experiments import learning, selectors
from mabdash.experiments.models import Experiment, Reward

logger = logging.getLogger(__name__)

_COALESCE_SECONDS = 30
_BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def _coalesce_key(experiment_id: int) -> str:
    return f"mabdash:apply-requested:{experiment_id}"


def _enqueue(experiment_id: int, countdown: float = 0) -> bool:
    """Publish one apply task; on a broker failure back off for a few seconds."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return False
    try:
        apply_pending_rewards_task.apply_async(args=[experiment_id], countdown=countdown or None, retry=False)
    except Exception as error:  # the broker is down: beat's sweep will catch up
        _broker_down_until = time.monotonic() + _BROKER_BACKOFF_SECONDS
        logger.warning("could not enqueue learning for experiment %s: %s", experiment_id, error)
        return False
    return True


def request_learning(experiment_id: int, countdown: float = 0) -> None:
    """Ask for the experiment's pending rewards to be applied (coalesced, never raises)."""
    try:
        if not cache.add(_coalesce_key(experiment_id), 1, timeout=_COALESCE_SECONDS):
            return  # a run is queued or running; it looks for new rewards when it ends
    except Exception as error:  # cache down: enqueue anyway, duplicates are harmless
        logger.warning("coalescing cache unavailable: %s", error)
    if not _enqueue(experiment_id, countdown):
        with contextlib.suppress(Exception):
            cache.delete(_coalesce_key(experiment_id))


@shared_task(acks_late=True, ignore_result=True)
def apply_pending_rewards_task(experiment_id: int) -> int:
    """Apply an experiment's pending rewards, then ask again if more arrived meanwhile."""
    started = time.monotonic()
    try:
        result = learning.apply_pending_rewards(experiment_id)
    finally:  # a failed run must not leave the key set until it expires
        try:
            cache.delete(_coalesce_key(experiment_id))
        except Exception as error:
            logger.warning("coalescing cache unavailable: %s", error)
    # Rewards committed while this run held the key published nothing: look for them now
    # that the key is gone (a reward committed after this check publishes a run itself).
    if result.more_pending:
        request_learning(experiment_id)  # a backlog: no pause
    elif selectors.has_pending_rewards(experiment_id):
        interval = settings.MABDASH["LEARNING_MIN_INTERVAL_SECONDS"]
        request_learning(experiment_id, countdown=max(0.0, interval - (time.monotonic() - started)))
    return result.applied


@shared_task(ignore_result=True)
def sweep_pending_rewards_task() -> int:
    """Beat: enqueue learning for experiments whose pending rewards wait longer than a sweep."""
    cutoff = timezone.now() - timedelta(seconds=settings.MABDASH["SWEEP_SECONDS"])
    experiment_ids = list(
        Reward.objects.filter(learn=True, applied_version__isnull=True, received_at__lte=cutoff)
        .values_list("experiment_id", flat=True)
        .distinct()
    )
    for experiment_id in experiment_ids:
        _enqueue(experiment_id)
    return len(experiment_ids)


@shared_task(ignore_result=True)
def snapshot_experiments_task() -> int:
    """Beat: a snapshot per running experiment at least every minute, for flat-line charts."""
    count = 0
    for experiment_id in Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("pk", flat=True):
        count += learning.snapshot_running_experiment(experiment_id)
    return count
