"""Requesting learning: one queued or running learning run per experiment, whatever the reward
rate; rewards that arrive during a run are picked up by the next one, which waits for the
rest of LEARNING_MIN_INTERVAL_SECONDS; a request after a quiet spell runs at once; requests
are published in the background, never by the request that stored the rewards."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from mabdash.accounts.authentication import principal_for_key
from mabdash.celery import app
from mabdash.control import tasks
from mabdash.experiments.models import Reward
from mabdash.experiments.services import scheduling
from mabdash.experiments.services.rewards import rewards_record
from mabdash.queue import background

LEARNING_TASK = "mabdash.control.tasks.learning_cycle_task"


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
    cache.delete(scheduling.coalesce_key(experiment.pk))
    yield experiment.pk
    cache.delete(scheduling.coalesce_key(experiment.pk))


def post_rewards(client_key: str, count: int) -> None:
    items = [{"experiment": "churn", "arm": i % 3, "value": i % 2} for i in range(count)]
    outcomes = rewards_record(items, principal_for_key(client_key))
    assert {o.status for o in outcomes} == {"accepted"}


def test_the_learning_task_name_is_registered():
    assert scheduling.LEARNING_TASK == LEARNING_TASK
    assert LEARNING_TASK in app.tasks


@pytest.mark.django_db
def test_requests_while_a_run_is_queued_publish_nothing_more(published, experiment_id):
    for _ in range(5):
        scheduling.learning_request(experiment_id)
    assert background.drain()
    assert published == [(LEARNING_TASK, f"[{experiment_id}]", False)]  # at once: no countdown


@pytest.mark.django_db(transaction=True)
def test_storing_rewards_requests_learning_after_the_commit(published, experiment_id, client_key):
    post_rewards(client_key, 10)
    assert background.drain()
    assert published == [(LEARNING_TASK, f"[{experiment_id}]", False)]


@pytest.mark.django_db
def test_a_run_with_nothing_new_frees_the_key_and_publishes_nothing(published, experiment_id, client_key):
    post_rewards(client_key, 10)
    assert scheduling.learning_request_now(experiment_id)
    assert tasks.learning_cycle_task(experiment_id) == 10
    assert published == [(LEARNING_TASK, f"[{experiment_id}]", False)]
    assert scheduling.learning_request_now(experiment_id)  # the key is gone: the next reward publishes again
    assert len(published) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("interval", "delayed"), [(60.0, True), (0.0, False)])
def test_rewards_committed_during_a_run_get_the_next_run(
    published, experiment_id, client_key, monkeypatch, settings, interval, delayed
):
    settings.MABDASH = {**settings.MABDASH, "LEARNING_MIN_INTERVAL_SECONDS": interval}
    post_rewards(client_key, 10)
    scheduling.learning_request_now(experiment_id)
    real_run = tasks.learning_cycle_run
    published_during_run = []

    def run_while_rewards_arrive(pk):
        result = real_run(pk)
        post_rewards(client_key, 3)  # committed after the claim
        assert not scheduling.learning_request_now(pk)  # finds the running task's key: publishes nothing
        published_during_run.extend(published[1:])
        return result

    monkeypatch.setattr(tasks, "learning_cycle_run", run_while_rewards_arrive)
    assert tasks.learning_cycle_task(experiment_id) == 10
    assert published_during_run == []
    # The run's own look afterwards publishes the next run, LEARNING_MIN_INTERVAL_SECONDS after
    # its own start.
    assert published == [(LEARNING_TASK, f"[{experiment_id}]", False), (LEARNING_TASK, f"[{experiment_id}]", delayed)]
    monkeypatch.setattr(tasks, "learning_cycle_run", real_run)
    assert tasks.learning_cycle_task(experiment_id) == 3
    assert Reward.objects.filter(experiment_id=experiment_id, applied_version__isnull=True).count() == 0


@pytest.mark.django_db
def test_a_failed_run_frees_the_key(published, experiment_id, monkeypatch):
    scheduling.learning_request_now(experiment_id)

    def fail(pk):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "learning_cycle_run", fail)
    with pytest.raises(RuntimeError):
        tasks.learning_cycle_task(experiment_id)
    assert scheduling.learning_request_now(experiment_id)  # not swallowed by a stale key for its 30 s lifetime
    assert len(published) == 2
