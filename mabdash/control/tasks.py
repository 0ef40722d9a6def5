"""Celery tasks of the control app: thin wrappers, ids in, idempotent."""

from __future__ import annotations

from celery import shared_task

from mabdash.control import services, webhooks


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook_task(delivery_id: int) -> str:
    """One delivery attempt (retries schedule themselves)."""
    return webhooks.deliver(delivery_id)


@shared_task(ignore_result=True)
def control_due_task() -> dict[str, int]:
    """Beat: expiries, veto windows that ended, webhook deliveries whose message was lost."""
    counts = services.due_process()
    counts["webhooks_requeued"] = webhooks.sweep_due()
    return counts
