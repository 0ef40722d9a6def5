"""Celery tasks of the control app: thin wrappers, ids in, idempotent.

Other layers publish some of them by name (``mabdash.queue.send_task``): keep the names.
"""

from __future__ import annotations

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from mabdash.control.services import actions, approvals, webhooks
from mabdash.control.services.learning_cycle import learning_cycle_run
from mabdash.experiments import selectors
from mabdash.experiments.services import scheduling


@shared_task(acks_late=True, ignore_result=True)
def learning_cycle_task(experiment_id: int) -> int:
    """Learn from an experiment's pending rewards and run its guardrails; ask again if more came."""
    started = time.monotonic()
    try:
        result = learning_cycle_run(experiment_id)
    finally:  # a failed run must not leave the request mark set until it expires
        scheduling.learning_run_finished(experiment_id)
    scheduling.learning_follow_up(experiment_id, more_pending=result.more_pending, started=started)
    return result.applied


@shared_task(ignore_result=True)
def learning_sweep_task() -> int:
    """Beat: a learning run for every experiment whose rewards wait longer than a sweep."""
    cutoff = timezone.now() - timedelta(seconds=float(settings.MABDASH["SWEEP_SECONDS"]))
    experiment_ids = selectors.experiments_waiting_since(cutoff)
    for experiment_id in experiment_ids:
        learning_cycle_task.apply_async(args=(experiment_id,), retry=False)
    return len(experiment_ids)


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> str:
    """One delivery attempt (retries schedule themselves)."""
    return webhooks.webhook_deliver(delivery_id)


@shared_task(ignore_result=True)
def control_due_task() -> dict[str, int]:
    """Beat: expiries, veto windows that ended, webhook deliveries whose message was lost."""
    return {
        "overrides_expired": actions.overrides_expire_due(),
        "requests_expired": approvals.requests_expire_due(),
        "proposals_applied": approvals.proposals_apply_due(),
        "webhooks_requeued": webhooks.webhooks_requeue_due(),
    }
