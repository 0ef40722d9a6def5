"""Recording rewards: every outcome, attribution through decision ids, lateness, scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mabdash.accounts.authentication import principal_for_key
from mabdash.accounts.services import api_key_create
from mabdash.experiments import decision_ids
from mabdash.experiments.models import Reward
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.services.rewards import rewards_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def principal(client_key):
    principal = principal_for_key(client_key)
    assert principal is not None
    return principal


def statuses(outcomes):
    return [(o.status, o.errors) for o in outcomes]


def test_a_reward_through_its_decision_is_attributed_to_the_served_arm(experiment, principal):
    decision = decide(experiment.slug, principal)
    (outcome,) = rewards_record([{"decision_id": decision.decision_id, "value": 1, "event_id": "evt-1"}], principal)
    assert (outcome.status, outcome.event_id) == ("accepted", "evt-1")
    reward = Reward.objects.get(event_id="evt-1")
    assert (reward.arm.position, reward.value, reward.learn, reward.applied_version) == (decision.arm, 1.0, True, None)
    assert reward.decision_id == decision.decision_id
    assert reward.decided_at == decision_ids.decode(decision.decision_id).issued_at


def test_duplicates_and_conflicts_by_event_id(experiment, principal):
    first = {"experiment": "churn", "arm": 1, "value": 1, "event_id": "e1"}
    assert statuses(rewards_record([first], principal)) == [("accepted", None)]
    outcomes = rewards_record([first, {**first, "value": 0}, {**first, "arm": 2}], principal)
    assert statuses(outcomes) == [
        ("duplicate", None),
        ("conflict", {"event_id": ["already recorded with a different payload"]}),
        ("conflict", {"event_id": ["already recorded with a different payload"]}),
    ]
    assert Reward.objects.get(event_id="e1").value == 1.0


def test_the_same_event_twice_in_one_batch_is_recorded_once(experiment, principal):
    item = {"experiment": "churn", "arm": 0, "value": 0, "event_id": "twice"}
    outcomes = rewards_record([item, item, {**item, "value": 1}], principal)
    assert [o.status for o in outcomes] == ["accepted", "duplicate", "conflict"]
    assert Reward.objects.filter(event_id="twice").count() == 1


def test_good_items_survive_bad_ones_and_every_rejection_names_its_field(experiment, principal):
    batch = [
        {"experiment": "churn", "arm": 0, "value": 1},
        "not an object",
        {"experiment": "churn", "arm": 0},
        {"experiment": "churn", "arm": 0, "value": "high"},
        {"experiment": "churn", "arm": 0, "value": True},
        {"experiment": "churn", "arm": 0, "value": 1e400},
        {"experiment": "churn", "arm": 0, "value": 0.5},
        {"experiment": "churn", "arm": 7, "value": 1},
        {"experiment": "churn", "arm": -1, "value": 1},
        {"experiment": "nope", "arm": 0, "value": 1},
        {"value": 1},
        {"decision_id": "forged.id", "value": 1},
        {"experiment": "churn", "arm": 0, "value": 1, "event_id": "has spaces"},
        {"experiment": "churn", "arm": 0, "value": 1, "colour": "red"},
        {"experiment": "churn", "arm": 0, "value": 1, "observed_at": "yesterday"},
        {"experiment": "churn", "arm": 2, "value": 0, "observed_at": "2026-11-27T10:00:00Z"},
    ]
    outcomes = rewards_record(batch, principal)
    assert statuses(outcomes) == [
        ("accepted", None),
        ("rejected", {"reward": ["must be a JSON object"]}),
        ("rejected", {"value": ["required"]}),
        ("rejected", {"value": ["must be a number"]}),
        ("rejected", {"value": ["must be a number"]}),
        ("rejected", {"value": ["must be finite"]}),
        ("rejected", {"value": ["must be 0 or 1 for this experiment (binary rewards)"]}),
        ("rejected", {"arm": ["experiment has no arm 7"]}),
        ("rejected", {"arm": ["must be a non-negative integer (the arm position decide returned)"]}),
        ("rejected", {"experiment": ["no experiment 'nope'"]}),
        ("rejected", {"decision_id": ["give a decision_id, or both experiment and arm"]}),
        ("rejected", {"decision_id": ["not a decision id issued by this deployment"]}),
        ("rejected", {"event_id": ["1-128 characters from A-Z a-z 0-9 . _ : -"]}),
        (
            "rejected",
            {"colour": ["unknown field; expected arm, decision_id, event_id, experiment, observed_at, value"]},
        ),
        ("rejected", {"observed_at": ["must be an ISO 8601 date-time"]}),
        ("accepted", None),
    ]
    assert Reward.objects.count() == 2


def test_decision_and_explicit_fields_must_agree(make_experiment, experiment, principal):
    decision = decide(experiment.slug, principal)
    other_arm = (decision.arm + 1) % 3
    outcomes = rewards_record(
        [
            {"decision_id": decision.decision_id, "experiment": "other", "value": 1},
            {"decision_id": decision.decision_id, "arm": other_arm, "value": 1},
        ],
        principal,
    )
    assert statuses(outcomes) == [
        ("rejected", {"experiment": ["does not match the decision's experiment 'churn'"]}),
        ("rejected", {"arm": [f"does not match the decision's arm {decision.arm}"]}),
    ]


def test_bounded_and_real_reward_ranges(make_experiment, model_versions):
    bounded = make_experiment("bounded", reward_kind="bounded")
    real = make_experiment("real", reward_kind="real")
    principal = principal_for_key(api_key_create(name="k", all_experiments=True).raw_key)
    outcomes = rewards_record(
        [
            {"experiment": "bounded", "arm": 0, "value": 0.25},
            {"experiment": "bounded", "arm": 0, "value": 1.5},
            {"experiment": "real", "arm": 0, "value": -1234.5},
            {"experiment": "real", "arm": 0, "value": 2e15},
        ],
        principal,
    )
    assert statuses(outcomes) == [
        ("accepted", None),
        ("rejected", {"value": ["must be in [0, 1] for this experiment (bounded rewards)"]}),
        ("accepted", None),
        ("rejected", {"value": ["must be within ±1e+15"]}),
    ]
    assert bounded.pk != real.pk


def test_rewards_for_decisions_older_than_the_window_are_stored_as_late(experiment, principal):
    old = decision_ids.encode(
        experiment_id=experiment.pk,
        position=1,
        policy_version=0,
        issued_ms=int((timezone.now() - timedelta(days=2)).timestamp() * 1000),
        served_by="policy",
        propensity=0.3,
    )
    (outcome,) = rewards_record([{"decision_id": old, "value": 1, "event_id": "late"}], principal)
    assert outcome.status == "accepted"
    assert Reward.objects.get(event_id="late").learn is False


def test_a_key_cannot_reward_another_experiment(make_experiment, experiment, principal):
    make_experiment("other")
    (outcome,) = rewards_record([{"experiment": "other", "arm": 0, "value": 1}], principal)
    assert statuses([outcome]) == [("rejected", {"experiment": ["this API key is not allowed on experiment 'other'"]})]


def test_a_reward_for_an_arm_added_a_moment_ago_is_accepted_despite_a_stale_cache(experiment, principal, settings):
    from mabdash.experiments.services.experiments import experiment_add_arm
    from mabdash.experiments.services.registry import model_version_register

    settings.MABDASH = {**settings.MABDASH, "SERVING_REFRESH_SECONDS": 3600}  # the cache never refreshes by itself
    assert rewards_record([{"experiment": "churn", "arm": 0, "value": 1}], principal)[0].status == "accepted"
    newcomer = model_version_register(name="churn", version="4", artifact_uri="s3://c/4", actor="t")
    experiment_add_arm(experiment, newcomer.pk, actor="t")
    (outcome,) = rewards_record([{"experiment": "churn", "arm": 3, "value": 1}], principal)
    assert outcome.status == "accepted"
    assert Reward.objects.filter(arm__position=3).count() == 1
