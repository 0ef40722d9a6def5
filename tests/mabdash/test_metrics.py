"""Prometheus metrics: protected, and counting what happens."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from mabdash.control.services.learning_cycle import learning_cycle_run

pytestmark = pytest.mark.django_db


def sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, flags=re.M)
    assert match, f"{name}{labels} not in metrics"
    return float(match.group(1))


def test_metrics_are_off_without_a_token(client, settings):
    settings.MABDASH_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token(client, settings):
    settings.MABDASH_METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_metrics_count_decisions_rewards_lag_and_approvals(api, client_key, experiment, operator, settings):
    settings.MABDASH_METRICS_TOKEN = "scrape-secret"
    scrape = Client(HTTP_AUTHORIZATION="Bearer scrape-secret")
    before = scrape.get("/metrics").content.decode()
    decided = sample(before, "mabdash_decide_seconds_count")
    accepted = sample(before, "mabdash_rewards_total", '{outcome="accepted"}') if 'outcome="accepted"' in before else 0
    client = api(client_key)
    for _ in range(3):
        client.post("/api/v1/experiments/churn/decide/")
    batch = [{"experiment": "churn", "arm": 0, "value": 1, "event_id": f"m{i}"} for i in range(4)]
    client.post("/api/v1/rewards/", {"rewards": [*batch, batch[0], {"value": 1}]}, format="json")
    text = scrape.get("/metrics").content.decode()
    assert sample(text, "mabdash_decide_seconds_count") == decided + 3
    assert sample(text, "mabdash_rewards_total", '{outcome="accepted"}') == accepted + 4
    assert sample(text, "mabdash_rewards_total", '{outcome="duplicate"}') >= 1
    assert sample(text, "mabdash_rewards_total", '{outcome="rejected"}') >= 1
    assert sample(text, "mabdash_pending_rewards", '{experiment="churn"}') == 4
    assert sample(text, "mabdash_learning_lag_seconds", '{experiment="churn"}') >= 0
    learning_cycle_run(experiment.pk)
    from mabdash.control.services.actions import Actor, action_submit

    action_submit(experiment, "rollback_arm", {"arm": 2}, Actor.of(operator), reason="metrics test")
    text = scrape.get("/metrics").content.decode()
    assert sample(text, "mabdash_pending_rewards", '{experiment="churn"}') == 0
    assert sample(text, "mabdash_learning_lag_seconds", '{experiment="churn"}') == 0
    assert sample(text, "mabdash_rollbacks", '{experiment="churn"}') == 1
    assert sample(text, "mabdash_approvals_pending", '{experiment="churn"}') == 0
