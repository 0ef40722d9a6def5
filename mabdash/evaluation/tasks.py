"""Celery tasks of the evaluation app (routed to the ``evaluation`` queue, its own worker)."""

from __future__ import annotations

from celery import shared_task

from mabdash.evaluation.services import reports


@shared_task(acks_late=True, ignore_result=True)
def counterfactual_task(report_id: int) -> str:
    """Compute one counterfactual report."""
    return reports.report_compute(report_id).status


@shared_task(ignore_result=True)
def counterfactual_requeue_task() -> int:
    """Beat: re-publish lost report requests, fail the stuck ones."""
    return reports.reports_requeue_due()
