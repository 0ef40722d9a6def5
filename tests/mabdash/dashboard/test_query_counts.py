"""The pages and the list API run the same number of queries for 1 experiment as for 50,
and for 3 arms as for 20: nothing queries per row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from mabdash.accounts.authentication import principal_for_key
from mabdash.accounts.services import api_key_create
from mabdash.control.services.actions import Actor, action_submit
from mabdash.control.services.learning_cycle import learning_cycle_run
from mabdash.experiments.models import Experiment
from mabdash.experiments.services.decision_log import decision_buffer
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.services.experiments import experiment_create
from mabdash.experiments.services.registry import model_version_register
from mabdash.experiments.services.rewards import rewards_record

pytestmark = pytest.mark.django_db


def experiments_with_traffic(count: int, arms: int, operator) -> list[Experiment]:
    models = [
        model_version_register(name=f"m{arms}", version=str(i), artifact_uri=f"s3://m/{i}", actor="t")
        for i in range(arms)
    ]
    created = []
    for n in range(count):
        experiment = experiment_create(
            slug=f"exp-{arms}-{n}",
            name=f"Experiment {n}",
            policy_kind="thompson",
            model_version_ids=[m.pk for m in models],
            status="running",
            actor="t",
        )
        principal = principal_for_key(api_key_create(name=f"k{n}", experiments=[experiment]).raw_key)
        decisions = [decide(experiment.slug, principal) for _ in range(5)]
        rewards_record([{"decision_id": d.decision_id, "value": 1.0} for d in decisions], principal)
        learning_cycle_run(experiment.pk)
        if n % 2:  # some experiments with a pin: overrides are looked up for every row
            action_submit(experiment, "pin", {"arm": 0}, Actor.of(operator), reason="t")
        created.append(experiment)
    decision_buffer.flush()
    return created


def queries(get) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = get()
    assert response.status_code == 200
    return len(captured)


def overview_queries(user) -> int:
    client = Client()
    client.force_login(user)
    return queries(lambda: client.get("/"))


def list_api_queries() -> int:
    api = APIClient()
    api.credentials(
        HTTP_AUTHORIZATION=f"Api-Key {api_key_create(name='admin', role='admin', all_experiments=True).raw_key}"
    )
    return queries(lambda: api.get("/api/v1/experiments/"))


def detail_queries(user, slug: str) -> tuple[int, int]:
    client = Client()
    client.force_login(user)
    return queries(lambda: client.get(f"/experiments/{slug}/")), queries(
        lambda: client.get(f"/experiments/{slug}/data/")
    )


def test_the_overview_and_the_list_api_do_not_query_per_experiment(operator):
    experiments_with_traffic(1, 3, operator)
    one = (overview_queries(operator), list_api_queries())
    experiments_with_traffic(49, 4, operator)  # 50 in all
    assert Experiment.objects.count() == 50
    assert (overview_queries(operator), list_api_queries()) == one
    assert one[0] <= 20 and one[1] <= 10


def test_the_experiment_page_does_not_query_per_arm(operator):
    (few,) = experiments_with_traffic(1, 3, operator)
    (many,) = experiments_with_traffic(1, 20, operator)
    assert detail_queries(operator, many.slug) == detail_queries(operator, few.slug)
