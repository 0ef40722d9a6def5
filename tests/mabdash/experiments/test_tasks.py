"""Requesting learning: one delayed apply task per experiment, whatever the reward rate."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache
from django.utils import timezone

from mabdash.celery import app
from mabdash.experiments.tasks import _coalesce_key, request_learning

EXPERIMENT_ID = 987_654  # no such experiment: the published tasks are purged, never run


@pytest.fixture
def published():
    """Headers of the tasks published during the test (Celery's own publish signal)."""
    seen: list[dict] = []

    def record(sender=None, headers=None, **kwargs):
        seen.append(headers)

    before_task_publish.connect(record, weak=False)
    cache.delete(_coalesce_key(EXPERIMENT_ID))
    yield seen
    before_task_publish.disconnect(record)
    cache.delete(_coalesce_key(EXPERIMENT_ID))
    app.control.purge()


def test_requests_while_a_task_waits_publish_nothing_more(published, settings):
    settings.MABDASH = {**settings.MABDASH, "LEARNING_DELAY_SECONDS": 0.2}
    before = timezone.now()
    for _ in range(5):
        request_learning(EXPERIMENT_ID)
    after = timezone.now()
    assert [h["task"] for h in published] == ["mabdash.experiments.tasks.apply_pending_rewards_task"]
    assert published[0]["argsrepr"] == f"[{EXPERIMENT_ID}]"
    # The task starts LEARNING_DELAY_SECONDS later, so rewards posted meanwhile join its run.
    eta = datetime.fromisoformat(published[0]["eta"])
    assert before + timedelta(seconds=0.2) <= eta <= after + timedelta(seconds=0.2)


def test_a_backlog_is_requested_without_delay(published):
    request_learning(EXPERIMENT_ID, delay=0)
    assert len(published) == 1
    assert published[0]["eta"] is None


def test_once_the_task_starts_a_new_request_publishes_again(published):
    request_learning(EXPERIMENT_ID)
    cache.delete(_coalesce_key(EXPERIMENT_ID))  # what the task does first when it starts
    request_learning(EXPERIMENT_ID)
    assert len(published) == 2
