"""The REST API over HTTP: every endpoint's happy path and its field-naming errors."""

from __future__ import annotations

import json

import pytest

from mabdash.experiments.models import Decision, Experiment, Reward
from mabdash.experiments.services.decision_log import decision_buffer

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- models
def test_register_list_and_show_model_versions(api, admin_key):
    client = api(admin_key)
    created = client.post(
        "/api/v1/models/",
        {
            "name": "fraud",
            "version": "7",
            "artifact_uri": "s3://m/fraud/7",
            "validation_score": 0.9,
            "metadata": {"auc": 0.97},
        },
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in ("name", "version", "validation_score", "metadata", "registered_by")} == {
        "name": "fraud",
        "version": "7",
        "validation_score": 0.9,
        "metadata": {"auc": 0.97},
        "registered_by": "api-key:automation",
    }
    listed = client.get("/api/v1/models/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    assert client.get(f"/api/v1/models/{body['id']}/").json() == body
    missing = client.get("/api/v1/models/999/")
    assert missing.status_code == 404 and missing.json()["errors"] == {
        "model_version": ["no model version with id 999"]
    }


def test_model_version_errors_name_the_field(api, admin_key):
    client = api(admin_key)
    response = client.post(
        "/api/v1/models/", {"name": "m", "artifact_uri": "s3://m", "validation_score": "high"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "version: required; validation_score: must be a number",
        "errors": {"version": ["required"], "validation_score": ["must be a number"]},
    }
    client.post("/api/v1/models/", {"name": "m", "version": "1", "artifact_uri": "s3://m"}, format="json")
    again = client.post("/api/v1/models/", {"name": "m", "version": "1", "artifact_uri": "s3://m"}, format="json")
    assert again.status_code == 409 and again.json()["errors"] == {
        "version": ["model 'm' version '1' is already registered"]
    }


# --------------------------------------------------------------------------- experiments
def test_create_show_and_list_an_experiment(api, admin_key, model_versions):
    client = api(admin_key)
    response = client.post(
        "/api/v1/experiments/",
        {
            "slug": "fraud-slot",
            "name": "Fraud slot",
            "policy": {"kind": "epsilon_greedy", "params": {"epsilon": 0.2}, "seed": 3},
            "reward_kind": "binary",
            "arms": [model_versions[2].pk, model_versions[0].pk],
            "default_arm": 1,
            "status": "running",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["policy"] == {"kind": "epsilon_greedy", "params": {"epsilon": 0.2}, "seed": 3}
    assert [(a["position"], a["model"]["version"]) for a in body["arms"]] == [(0, "3"), (1, "1")]
    assert (body["status"], body["default_arm"], body["created_by"]) == ("running", 1, "api-key:automation")
    assert client.get("/api/v1/experiments/fraud-slot/").json() == body
    assert [e["slug"] for e in client.get("/api/v1/experiments/").json()["results"]] == ["fraud-slot"]


def test_experiment_errors_name_the_field(api, admin_key, model_versions):
    client = api(admin_key)
    response = client.post(
        "/api/v1/experiments/",
        {"slug": "x", "name": "X", "policy": {"kind": "ucb1", "params": {"alpha": -1}}, "arms": [model_versions[0].pk]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"policy_params": ["alpha: must be at least 0.0, got -1"]}
    nested = client.post("/api/v1/experiments/", {"slug": "x", "name": "X", "policy": {}, "arms": "all"}, format="json")
    assert nested.json()["errors"] == {
        "policy.kind": ["This field is required."],
        "arms": ['Expected a list of items but got type "str".'],
    }


def test_status_changes_and_arm_additions(api, admin_key, experiment, model_versions):
    client = api(admin_key)
    paused = client.post(
        "/api/v1/experiments/churn/status/", {"status": "paused", "reason": "maintenance"}, format="json"
    )
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    bad = client.post("/api/v1/experiments/churn/status/", {"status": "archived"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"] == {"status": ['"archived" is not a valid choice.']}
    from mabdash.experiments.services.registry import model_version_register

    newcomer = model_version_register(name="churn", version="9", artifact_uri="s3://c/9", actor="t")
    added = client.post("/api/v1/experiments/churn/arms/", {"model_version": newcomer.pk}, format="json")
    assert added.status_code == 201 and added.json()["position"] == 3
    duplicate = client.post("/api/v1/experiments/churn/arms/", {"model_version": newcomer.pk}, format="json")
    assert duplicate.status_code == 409


def test_unknown_experiment_is_a_404_everywhere(api, admin_key):
    client = api(admin_key)
    for method, path in [
        ("get", "/api/v1/experiments/nope/"),
        ("get", "/api/v1/experiments/nope/state/"),
        ("post", "/api/v1/experiments/nope/decide/"),
        ("post", "/api/v1/experiments/nope/status/"),
    ]:
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 404, path
        assert response.json()["errors"] == {"experiment": ["no experiment 'nope'"]}


# --------------------------------------------------------------------------- decide
def test_decide_answers_with_a_model_and_logs_the_decision(api, client_key, experiment):
    response = api(client_key).post("/api/v1/experiments/churn/decide/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "decision_id",
        "arm",
        "model",
        "propensity",
        "policy_version",
        "serving_version",
        "served_by",
        "experiment_status",
        "note",
    }
    assert body["serving_version"] == Experiment.objects.get(slug="churn").serving_version
    assert body["model"]["artifact_uri"] == f"s3://models/churn/{body['arm'] + 1}"
    assert (body["served_by"], body["experiment_status"], body["note"], body["policy_version"]) == (
        "policy",
        "running",
        None,
        0,
    )
    assert decision_buffer.flush() == 1
    decision = Decision.objects.get()
    assert (decision.decision_id, decision.arm.position, decision.propensity) == (
        body["decision_id"],
        body["arm"],
        body["propensity"],
    )
    assert decision.arm.served_count == 1


@pytest.mark.parametrize("status", ["paused", "stopped"])
def test_paused_and_stopped_experiments_serve_their_default_arm(
    api, client_key, make_experiment, model_versions, status
):
    experiment = make_experiment("held", default_arm=2)
    from mabdash.accounts.services import api_key_create
    from mabdash.experiments.services.experiments import experiment_set_status

    experiment_set_status(experiment, status)
    key = api_key_create(name="k2", experiments=[experiment]).raw_key
    body = api(key).post("/api/v1/experiments/held/decide/").json()
    assert (body["arm"], body["propensity"], body["served_by"], body["experiment_status"]) == (
        2,
        1.0,
        "default",
        status,
    )
    assert body["note"] == f"experiment is {status}; serving its default arm"


def test_decide_follows_the_learned_allocation(api, client_key, make_experiment, model_versions):
    experiment = make_experiment(
        "greedy", policy_kind="epsilon_greedy", policy_params={"epsilon": 0.0, "min_share": 0.0}
    )
    from mabdash.accounts.services import api_key_create
    from mabdash.control.services.learning_cycle import learning_cycle_run

    key = api_key_create(name="k3", experiments=[experiment]).raw_key
    client = api(key)
    client.post("/api/v1/rewards/", {"rewards": [{"experiment": "greedy", "arm": 1, "value": 1}]}, format="json")
    learning_cycle_run(experiment.pk)
    arms = {client.post("/api/v1/experiments/greedy/decide/").json()["arm"] for _ in range(20)}
    assert arms == {1}


# --------------------------------------------------------------------------- rewards
def test_single_reward_status_codes(api, client_key, experiment):
    client = api(client_key)
    decision = client.post("/api/v1/experiments/churn/decide/").json()
    reward = {"decision_id": decision["decision_id"], "value": 1, "event_id": "r-1"}
    first = client.post("/api/v1/rewards/", reward, format="json")
    assert (first.status_code, first.json()) == (201, {"index": 0, "event_id": "r-1", "status": "accepted"})
    again = client.post("/api/v1/rewards/", reward, format="json")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    clash = client.post("/api/v1/rewards/", {**reward, "value": 0}, format="json")
    assert (clash.status_code, clash.json()["status"]) == (409, "conflict")
    bad = client.post("/api/v1/rewards/", {**reward, "event_id": "r-2", "value": 7}, format="json")
    assert bad.status_code == 400
    assert bad.json() == {
        "index": 0,
        "event_id": "r-2",
        "status": "rejected",
        "errors": {"value": ["must be 0 or 1 for this experiment (binary rewards)"]},
        "detail": "value: must be 0 or 1 for this experiment (binary rewards)",
    }


def test_batch_reports_every_item(api, client_key, experiment):
    batch = {
        "rewards": [
            {"experiment": "churn", "arm": 0, "value": 1, "event_id": "b1"},
            {"experiment": "churn", "arm": 0, "value": 1, "event_id": "b1"},
            {"experiment": "churn", "arm": 9, "value": 1, "event_id": "b3"},
        ]
    }
    response = api(client_key).post("/api/v1/rewards/", batch, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicate": 1,
        "conflict": 0,
        "rejected": 1,
        "results": [
            {"index": 0, "event_id": "b1", "status": "accepted"},
            {"index": 1, "event_id": "b1", "status": "duplicate"},
            {"index": 2, "event_id": "b3", "status": "rejected", "errors": {"arm": ["experiment has no arm 9"]}},
        ],
    }
    assert Reward.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "errors"),
    [
        (
            '{"value": 1,',
            "application/json",
            400,
            {"body": ["not JSON: Expecting property name enclosed in double quotes (line 1, column 13)"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": NaN}',
            "application/json",
            400,
            {"value": ["must be a finite number in [-1e+15, 1e+15]"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": Infinity}',
            "application/json",
            400,
            {"value": ["must be a finite number in [-1e+15, 1e+15]"]},
        ),
        ("[1, 2]", "application/json", 400, {"body": ['must be a reward object or {"rewards": [...]}']}),
        ('{"rewards": {}}', "application/json", 400, {"rewards": ["must be a list of reward objects"]}),
        ('{"rewards": []}', "application/json", 400, {"rewards": ["must not be empty"]}),
        ('{"rewards": [], "extra": 1}', "application/json", 400, {"extra": ["unexpected field next to rewards"]}),
        ("value=1", "application/x-www-form-urlencoded", 415, {}),
    ],
)
def test_malformed_bodies_get_a_4xx_naming_the_problem(api, client_key, experiment, body, content_type, status, errors):
    response = api(client_key).generic("POST", "/api/v1/rewards/", body, content_type=content_type)
    assert response.status_code == status
    assert response.json()["errors"] == errors


def test_oversize_batches_and_bodies_get_413(api, client_key, experiment, settings):
    client = api(client_key)
    items = [{"experiment": "churn", "arm": 0, "value": 1}] * 10_001
    too_many = client.post("/api/v1/rewards/", {"rewards": items}, format="json")
    assert too_many.status_code == 413
    assert too_many.json()["detail"] == "rewards: 10001 items; at most 10000 per request"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    too_big = client.generic(
        "POST", "/api/v1/rewards/", json.dumps({"rewards": items[:100]}), content_type="application/json"
    )
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == "Request body is larger than the limit of 1000 bytes."
    assert Reward.objects.count() == 0


def test_ten_thousand_rewards_in_one_batch(api, client_key, experiment):
    items = [{"experiment": "churn", "arm": i % 3, "value": i % 2, "event_id": f"bulk-{i}"} for i in range(10_000)]
    response = api(client_key).post("/api/v1/rewards/", {"rewards": items}, format="json")
    assert response.status_code == 200 and response.json()["accepted"] == 10_000
    assert Reward.objects.filter(experiment=experiment).count() == 10_000


# --------------------------------------------------------------------------- state
def test_state_reports_counts_allocation_and_pending(api, client_key, experiment):
    client = api(client_key)
    client.post(
        "/api/v1/rewards/",
        {"rewards": [{"experiment": "churn", "arm": 1, "value": v} for v in (1, 1, 0)]},
        format="json",
    )
    pending = client.get("/api/v1/experiments/churn/state/").json()
    assert (pending["pending_rewards"], pending["policy_version"]) == (3, 0)
    from mabdash.control.services.learning_cycle import learning_cycle_run

    learning_cycle_run(experiment.pk)
    state = client.get("/api/v1/experiments/churn/state/").json()
    assert (state["pending_rewards"], state["applied_rewards"], state["policy_version"]) == (0, 3, 1)
    arm = state["arms"][1]
    assert (arm["rewards"], arm["reward_sum"], arm["mean"]) == (3, 2.0, 0.6)  # Beta(3, 2)
    assert sum(a["allocation"] for a in state["arms"]) == pytest.approx(1.0)
    assert state["uncertainty"] == "beta"
    assert Experiment.objects.get(pk=experiment.pk).status == state["status"] == "running"
