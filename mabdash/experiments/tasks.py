"""Celery tasks of the experiments app: thin wrappers, idempotent.

Learning runs are ``mabdash.control.tasks.learning_cycle_task``: learning and the guardrails
that act on it are sequenced by the control layer.
"""

from __future__ import annotations

from celery import shared_task

from mabdash.experiments.services.learning import snapshots_take


@shared_task(ignore_result=True)
def snapshots_take_task() -> int:
    """Beat: a snapshot per running experiment at least every minute, for flat-line charts."""
    return snapshots_take(min_seconds=60.0)
