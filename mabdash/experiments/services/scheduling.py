"""Asking the workers to learn: at most one learning run queued or running per experiment.

A cache key per experiment marks a run as queued or running; while it is set, further
requests publish nothing. The run clears the key when it has finished and then looks for
rewards that arrived meanwhile. If there are some, the experiment is under steady traffic:
the next run is published to start ``LEARNING_MIN_INTERVAL_SECONDS`` after this one started,
so rewards posted one at a time are learned a few runs per second, in batches, instead of
keeping the worker (and the database) busy with one small run after another. A reward that
arrives when no run is queued is learned at once.

Only that follow-up run waits for a countdown: an idle worker holds no message, which
matters because kombu's Redis transport ends a worker that holds an unacknowledged message
when the broker goes away (docs/OPERATIONS.md).

Requests are best effort and run in the background (``mabdash.queue``): a reward POST never
waits on the cache or the broker. If either is down the request is dropped — the rewards
are safe in the ledger and beat's sweep publishes a run for them. The sweep is also what
recovers from a worker killed while it held a run (the key stays set for its lifetime, the
broker returns the message only after its visibility timeout): learning is delayed by about
``SWEEP_SECONDS``, and without beat it would wait for the next reward after the key expired.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from django.conf import settings
from django.core.cache import cache

from mabdash.experiments.selectors import has_pending_rewards
from mabdash.queue import BrokerUnavailable, background, send_task

logger = logging.getLogger(__name__)

#: The task that runs one learning cycle (learning + guardrails), defined by ``mabdash.control``.
LEARNING_TASK = "mabdash.control.tasks.learning_cycle_task"
COALESCE_SECONDS = 30


def coalesce_key(experiment_id: int) -> str:
    """The cache key that marks a learning run of the experiment as queued or running."""
    return f"mabdash:learning-requested:{experiment_id}"


def learning_request(experiment_id: int, countdown: float = 0.0) -> None:
    """Ask for the experiment's pending rewards to be learned (coalesced, in the background)."""
    background.submit(("learn", experiment_id), partial(learning_request_now, experiment_id, countdown))


def learning_request_now(experiment_id: int, countdown: float = 0.0) -> bool:
    """Publish a learning run unless one is queued or running; return whether one was published.

    Blocking: for the background thread and the workers, never a request handler.
    """
    key = coalesce_key(experiment_id)
    try:
        if not cache.add(key, 1, timeout=COALESCE_SECONDS):
            return False  # a run is queued or running; it looks for new rewards when it ends
    except Exception as error:  # cache down: publish anyway, duplicate runs are harmless
        logger.warning("coalescing cache unavailable: %s", error)
    try:
        send_task(LEARNING_TASK, [experiment_id], countdown)
    except BrokerUnavailable:
        learning_run_finished(experiment_id)  # nothing is queued: let the next request try
        raise
    return True


def learning_run_finished(experiment_id: int) -> None:
    """Clear the experiment's mark, so the next request publishes a run (never raises)."""
    try:
        cache.delete(coalesce_key(experiment_id))
    except Exception as error:
        logger.warning("coalescing cache unavailable: %s", error)


def learning_follow_up(experiment_id: int, *, more_pending: bool, started: float) -> None:
    """After a run (its mark cleared): publish the next one if rewards arrived meanwhile.

    A backlog (``more_pending``) gets the next run at once; rewards that trickled in get it
    ``LEARNING_MIN_INTERVAL_SECONDS`` after this run started (``time.monotonic()``). Never
    raises: a broker outage leaves the rewards to beat's sweep.
    """
    try:
        if more_pending:
            learning_request_now(experiment_id)
        elif has_pending_rewards(experiment_id):
            interval = float(settings.MABDASH["LEARNING_MIN_INTERVAL_SECONDS"])
            learning_request_now(experiment_id, countdown=max(0.0, interval - (time.monotonic() - started)))
    except BrokerUnavailable as error:
        logger.warning("could not publish the next learning run of experiment %s: %s", experiment_id, error)
