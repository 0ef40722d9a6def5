"""Requesting learning: one queued or running apply task per experiment, whatever the reward
rate; rewards that arrive during a run are picked up by the next one, which waits for the
rest of LEARNING_MIN_INTERVAL_SECONDS; a request after a quiet spell runs at once."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from mabdash.accounts.authentication import principal_for_key
from mabdash.celery import app
from mabdash.experiments import learning
from mabdash.experiments.models import Reward
from mabdash.experiments.rewards import rewards_record
from mabdash.experiments.tasks import _coalesce_key, apply_pending_rewards_task, request_learning

APPLY_TASK = "mabdash.experiments.tasks.apply_pending_rewards_task"


@pytest.fixture
def published():
    """(task name, args, whether it has a countdown) of the tasks published during the test
    (Celery's own publish signal)."""
    seen: list[tuple[str, str, bool]] = []

    def record(sender=None, headers=None, **kwargs):
        seen.append((headers["task"], headers["argsrepr"], headers["eta"] is not None))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)
    app.control.purge()  # never run by a worker


@pytest.fixture
def experiment_id(experiment):
    cache.delete(_coalesce_key(experiment.pk))
    yield experiment.pk
    cache.delete(_coalesce_key(experiment.pk))


def post_rewards(client_key: str, count: int) -> None:
    items = [{"experiment": "churn", "arm": i % 3, "value": i % 2} for i in range(count)]
    outcomes = rewards_record(items, principal_for_key(client_key))
    assert {o.status for o in outcomes} == {"accepted"}


@pytest.mark.django_db
def test_requests_while_a_run_is_queued_publish_nothing_more(published, experiment_id):
    for _ in range(5):
        request_learning(experiment_id)
    assert published == [(APPLY_TASK, f"[{experiment_id}]", False)]  # at once: no countdown


@pytest.mark.django_db
def test_a_run_with_nothing_new_frees_the_key_and_publishes_nothing(published, experiment_id, client_key):
    post_rewards(client_key, 10)
    request_learning(experiment_id)
    assert apply_pending_rewards_task(experiment_id) == 10
    assert published == [(APPLY_TASK, f"[{experiment_id}]", False)]
    request_learning(experiment_id)  # the key is gone: the next reward publishes again
    assert len(published) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("interval", "delayed"), [(60.0, True), (0.0, False)])
def test_rewards_committed_during_a_run_get_the_next_run(
    published, experiment_id, client_key, monkeypatch, settings, interval, delayed
):
    settings.MABDASH = {**settings.MABDASH, "LEARNING_MIN_INTERVAL_SECONDS": interval}
    post_rewards(client_key, 10)
    request_learning(experiment_id)
    real_apply = learning.apply_pending_rewards
    published_during_run = []

    def apply_while_rewards_arrive(pk):
        result = real_apply(pk)
        post_rewards(client_key, 3)  # committed after the claim
        request_learning(pk)  # finds the running task's key: publishes nothing
        published_during_run.extend(published[1:])
        return result

    monkeypatch.setattr(learning, "apply_pending_rewards", apply_while_rewards_arrive)
    assert apply_pending_rewards_task(experiment_id) == 10
    assert published_during_run == []
    # The run's own look afterwards publishes the next run, LEARNING_MIN_INTERVAL_SECONDS after
    # its own start.
    assert published == [(APPLY_TASK, f"[{experiment_id}]", False), (APPLY_TASK, f"[{experiment_id}]", delayed)]
    monkeypatch.setattr(learning, "apply_pending_rewards", real_apply)
    assert apply_pending_rewards_task(experiment_id) == 3
    assert Reward.objects.filter(experiment_id=experiment_id, applied_version__isnull=True).count() == 0


@pytest.mark.django_db
def test_a_failed_run_frees_the_key(published, experiment_id, monkeypatch):
    request_learning(experiment_id)

    def fail(pk):
        raise RuntimeError("database went away")

    monkeypatch.setattr(learning, "apply_pending_rewards", fail)
    with pytest.raises(RuntimeError):
        apply_pending_rewards_task(experiment_id)
    request_learning(experiment_id)  # not swallowed by a stale key for its 30 s lifetime
    assert len(published) == 2
