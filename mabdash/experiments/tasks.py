"""Celery tasks: thin, ids in, idempotent. The logic lives in ``learning``.

Learning is *requested* after a reward batch commits: at most one apply task waits per
experiment (a cache key, removed when the task starts), and it starts
``LEARNING_DELAY_SECONDS`` after the request, so the rewards arriving meanwhile are applied
by that one run instead of one run each. Enqueueing is best effort — if the
broker or cache is down the request is dropped, the rewards are safe in the ledger, and
beat's sweep picks them up. So a lost message only delays learning.
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

from mabdash.experiments import learning
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


def request_learning(experiment_id: int, delay: float | None = None) -> None:
    """Ask for the experiment's pending rewards to be applied (coalesced, never raises).

    ``delay`` defaults to ``LEARNING_DELAY_SECONDS``; a backlog is asked for with none.
    """
    try:
        if not cache.add(_coalesce_key(experiment_id), 1, timeout=_COALESCE_SECONDS):
            return  # an apply task is already waiting
    except Exception as error:  # cache down: enqueue anyway, duplicates are harmless
        logger.warning("coalescing cache unavailable: %s", error)
    if delay is None:
        delay = settings.MABDASH["LEARNING_DELAY_SECONDS"]
    if not _enqueue(experiment_id, delay):
        with contextlib.suppress(Exception):
            cache.delete(_coalesce_key(experiment_id))


@shared_task(acks_late=True, ignore_result=True)
def apply_pending_rewards_task(experiment_id: int) -> int:
    """Apply an experiment's pending rewards; re-enqueue itself if more remain."""
    try:
        cache.delete(_coalesce_key(experiment_id))
    except Exception as error:
        logger.warning("coalescing cache unavailable: %s", error)
    result = learning.apply_pending_rewards(experiment_id)
    if result.more_pending:
        request_learning(experiment_id, delay=0)
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
