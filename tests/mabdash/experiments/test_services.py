"""Registry and experiment services: validation, conflicts, transitions, arms."""

from __future__ import annotations

import pytest

import policies
from mabdash.errors import Conflict, InvalidInput
from mabdash.experiments.models import AuditEntry, Experiment, PolicyChange, PolicyState
from mabdash.experiments.services.experiments import experiment_add_arm, experiment_set_status
from mabdash.experiments.services.registry import model_version_register

pytestmark = pytest.mark.django_db


def test_registering_a_model_version_is_audited():
    model = model_version_register(
        name="fraud-gbm",
        version="2.1",
        artifact_uri="s3://m/fraud/2.1",
        validation_score=0.93,
        metadata={"features": 30},
        actor="olivia",
    )
    assert (model.name, model.version, model.registered_by, model.metadata) == (
        "fraud-gbm",
        "2.1",
        "olivia",
        {"features": 30},
    )
    entry = AuditEntry.objects.get(kind="model.registered")
    assert entry.actor == "olivia" and entry.after == {"model": "fraud-gbm:2.1", "artifact_uri": "s3://m/fraud/2.1"}


def test_the_same_name_and_version_cannot_be_registered_twice(model_versions):
    with pytest.raises(Conflict) as caught:
        model_version_register(name="churn", version="1", artifact_uri="s3://x", actor="t")
    assert caught.value.errors == {"version": ["model 'churn' version '1' is already registered"]}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "bad name!"}, "name"),
        ({"version": ""}, "version"),
        ({"artifact_uri": ""}, "artifact_uri"),
        ({"validation_score": float("nan")}, "validation_score"),
        ({"metadata": {"blob": "x" * 70_000}}, "metadata"),
    ],
)
def test_bad_model_fields_are_named(fields, field):
    arguments = {"name": "m", "version": "1", "artifact_uri": "s3://m", "actor": "t", **fields}
    with pytest.raises(InvalidInput) as caught:
        model_version_register(**arguments)
    assert list(caught.value.errors) == [field]


def test_creating_an_experiment_builds_version_zero_of_its_policy(experiment, model_versions):
    state = PolicyState.objects.get(experiment=experiment)
    assert state.version == 0
    assert state.state["kind"] == "thompson" and state.state["n_arms"] == 3
    assert sum(state.allocation) == pytest.approx(1.0)
    assert [a.model_version_id for a in experiment.arms.order_by("position")] == [m.pk for m in model_versions]
    creation = PolicyChange.objects.get(experiment=experiment)
    assert (creation.version, creation.kind, creation.data["n_arms"]) == (0, "create", 3)


def test_validation_policy_takes_scores_from_the_model_versions(make_experiment):
    experiment = make_experiment("val", policy_kind="validation")
    assert experiment.policy_params == {"scores": [0.81, 0.86, 0.79]}
    # The best-validated model, with the 1 % exploration floor for the others.
    assert PolicyState.objects.get(experiment=experiment).allocation == [0.01, 0.98, 0.01]


def test_validation_policy_needs_every_score(make_experiment, model_versions):
    unscored = model_version_register(name="x", version="1", artifact_uri="s3://x", actor="t")
    with pytest.raises(InvalidInput) as caught:
        make_experiment("val", policy_kind="validation", model_version_ids=[model_versions[0].pk, unscored.pk])
    assert caught.value.errors == {"arms": ["the validation policy needs a validation score for x:1"]}


def test_real_rewards_get_the_gaussian_thompson_model(make_experiment):
    experiment = make_experiment("real", reward_kind="real")
    assert experiment.policy_params == {"model": "gaussian"}
    with pytest.raises(InvalidInput) as caught:
        make_experiment("real2", reward_kind="real", policy_params={"model": "beta"})
    assert caught.value.errors == {"policy_params": ["model: real rewards need the gaussian model"]}


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        (
            {"policy_kind": "greedy"},
            {"policy_kind": ["unknown policy 'greedy'; expected one of " + ", ".join(policies.POLICIES)]},
        ),
        (
            {"policy_params": {"epsilon": 2}, "policy_kind": "epsilon_greedy"},
            {"policy_params": ["epsilon: must be at most 1.0, got 2"]},
        ),
        (
            {"policy_params": {"gamma": 1}},
            {
                "policy_params": [
                    "params.gamma: unknown parameter for thompson; expected one of model, prior_alpha, prior_beta, prior_mean, prior_strength, prior_variance, n_draws, min_share"
                ]
            },
        ),
        ({"model_version_ids": []}, {"arms": ["give at least one model version id"]}),
        ({"model_version_ids": [999]}, {"arms": ["no model version with id 999"]}),
        ({"default_arm": 3}, {"default_arm": ["must be an arm position in [0, 3)"]}),
        ({"status": "paused"}, {"status": ["a new experiment starts as draft or running"]}),
        ({"reward_kind": "ordinal"}, {"reward_kind": ["must be one of binary, bounded, real"]}),
    ],
)
def test_bad_experiments_are_refused_naming_the_field(make_experiment, overrides, errors):
    with pytest.raises(InvalidInput) as caught:
        make_experiment("bad", **overrides)
    assert caught.value.errors == errors
    assert not Experiment.objects.filter(slug="bad").exists()


def test_slug_rules_and_uniqueness(make_experiment, experiment):
    with pytest.raises(InvalidInput) as caught:
        make_experiment("Not A Slug")
    assert list(caught.value.errors) == ["slug"]
    with pytest.raises(Conflict) as caught:
        make_experiment(experiment.slug)
    assert caught.value.errors == {"slug": ["experiment 'churn' already exists"]}


def test_status_transitions_follow_the_allowed_paths(experiment):
    paused = experiment_set_status(experiment, "paused")
    assert paused.status == "paused"
    with pytest.raises(Conflict) as caught:
        experiment_set_status(paused, "paused")
    assert caught.value.errors == {"status": ["the experiment is already paused"]}
    stopped = experiment_set_status(paused, "stopped")
    with pytest.raises(Conflict) as caught:
        experiment_set_status(stopped, "running")
    assert caught.value.errors == {"status": ["cannot go from stopped to running"]}


def test_adding_an_arm_extends_the_running_policy(experiment):
    newcomer = model_version_register(name="churn", version="4", artifact_uri="s3://c/4", actor="t")
    arm = experiment_add_arm(experiment, newcomer.pk)
    assert arm.position == 3
    state = PolicyState.objects.get(experiment=experiment)
    assert (state.version, state.state["n_arms"], len(state.allocation)) == (1, 4, 4)
    assert PolicyChange.objects.get(experiment=experiment, version=1).kind == "add_arm"
    with pytest.raises(Conflict):
        experiment_add_arm(experiment, newcomer.pk)
    with pytest.raises(InvalidInput) as caught:
        experiment_add_arm(experiment, 999)
    assert caught.value.errors == {"model_version": ["no model version with id 999"]}


def test_audit_entries_are_append_only(experiment):
    entry = AuditEntry.objects.first()
    entry.reason = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()


def test_reward_kind_picks_the_thompson_model_and_guards_the_anytime_ab_test(make_experiment):
    binary = make_experiment("binary-thompson")
    assert binary.policy_params == {}  # Beta–Bernoulli: exact for 0/1 rewards
    bounded = make_experiment("bounded-thompson", reward_kind="bounded")
    assert bounded.policy_params == {"model": "gaussian", "prior_mean": 0.5, "prior_variance": 0.25}
    chosen = make_experiment("bounded-beta", reward_kind="bounded", policy_params={"model": "beta"})
    assert chosen.policy_params == {"model": "beta"}
    with pytest.raises(InvalidInput) as caught:
        make_experiment(
            "real-ab", reward_kind="real", policy_kind="ab_test", policy_params={"require_significance": True}
        )
    assert caught.value.errors == {
        "policy_params": ["require_significance: the anytime test needs rewards in [0, 1] (binary or bounded)"]
    }
