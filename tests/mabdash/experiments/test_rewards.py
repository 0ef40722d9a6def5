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
from mabdash.inputs import Unrepresentable

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
        ("conflict", {"event_id": ["already recorded for this experiment with a different payload"]}),
        ("conflict", {"event_id": ["already recorded for this experiment with a different payload"]}),
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
        # What the parser hands over for numbers no double holds, and hostile strings and dates.
        {"experiment": "churn", "arm": 0, "value": int("1" * 310)},
        {"experiment": "churn", "arm": 0, "value": Unrepresentable("NaN")},
        {"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-13-45T00:00:00Z"},
        {"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-02-30T00:00:00Z"},
        {"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-02-03T25:00:00Z"},
        {"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-02-03T10:00:00"},
        {"experiment": "churn", "arm": 0, "value": 1, "event_id": "nul\x00"},
        {"experiment": "churn", "arm": 0, "value": 1, "event_id": "lone\ud800"},
        {"experiment": "churn", "arm": 0, "value": 1, "event_id": "ünïcode"},
        {"experiment": "chu\x00rn", "arm": 0, "value": 1},
        {"experiment": "churn", "arm": 0, "value": 1, "event_id": None, "observed_at": None},
    ]
    outcomes = rewards_record(batch, principal)
    finite = "must be a finite number in [-1e+15, 1e+15]"
    rfc3339 = "must be an RFC 3339 date-time with a time zone, e.g. 2026-12-02T09:30:00Z"
    event_id = "1-128 characters from A-Z a-z 0-9 . _ : -"
    assert statuses(outcomes) == [
        ("accepted", None),
        ("rejected", {"reward": ["must be a JSON object"]}),
        ("rejected", {"value": ["required (or successes and trials)"]}),
        ("rejected", {"value": ["must be a number"]}),
        ("rejected", {"value": ["must be a number"]}),
        ("rejected", {"value": [finite]}),
        ("rejected", {"value": ["must be 0 or 1 for this experiment (binary rewards)"]}),
        ("rejected", {"arm": ["experiment has no arm 7"]}),
        ("rejected", {"arm": ["must be in [0, 999]"]}),
        ("rejected", {"experiment": ["no experiment 'nope'"]}),
        ("rejected", {"decision_id": ["give a decision_id, or both experiment and arm"]}),
        ("rejected", {"decision_id": ["not a decision id issued by this deployment"]}),
        ("rejected", {"event_id": [event_id]}),
        (
            "rejected",
            {
                "colour": [
                    "unknown field; expected one of event_id, decision_id, experiment, arm, value, successes, "
                    "trials, observed_at"
                ]
            },
        ),
        ("rejected", {"observed_at": [rfc3339]}),
        ("accepted", None),
        ("rejected", {"value": [finite]}),
        ("rejected", {"value": [finite]}),
        ("rejected", {"observed_at": ["'2026-13-45T00:00:00Z' is not a real date and time"]}),
        ("rejected", {"observed_at": ["'2026-02-30T00:00:00Z' is not a real date and time"]}),
        ("rejected", {"observed_at": ["'2026-02-03T25:00:00Z' is not a real date and time"]}),
        ("rejected", {"observed_at": [rfc3339]}),
        ("rejected", {"event_id": ["must not contain NUL characters"]}),
        ("rejected", {"event_id": ["must be valid Unicode (no unpaired surrogates)"]}),
        ("rejected", {"event_id": [event_id]}),
        ("rejected", {"experiment": ["must not contain NUL characters"]}),
        ("accepted", None),
    ]
    # A rejected item's event id is echoed only when it is one the client could have meant.
    assert [o.event_id for o in outcomes[22:24]] == [None, None]
    assert Reward.objects.count() == 3


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
        ("rejected", {"value": ["must be a finite number in [-1e+15, 1e+15]"]}),
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
    # Exactly the answer for an experiment that does not exist: the key learns nothing.
    assert statuses([outcome]) == [("rejected", {"experiment": ["no experiment 'other'"]})]


def test_a_reward_for_an_arm_added_a_moment_ago_is_accepted_despite_a_stale_cache(experiment, principal, settings):
    from mabdash.experiments.services.experiments import experiment_add_arm
    from mabdash.experiments.services.registry import model_version_register

    settings.MABDASH = {**settings.MABDASH, "SERVING_REFRESH_SECONDS": 3600}  # the cache never refreshes by itself
    assert rewards_record([{"experiment": "churn", "arm": 0, "value": 1}], principal)[0].status == "accepted"
    newcomer = model_version_register(name="churn", version="4", artifact_uri="s3://c/4", actor="t")
    experiment_add_arm(experiment, newcomer.pk)
    (outcome,) = rewards_record([{"experiment": "churn", "arm": 3, "value": 1}], principal)
    assert outcome.status == "accepted"
    assert Reward.objects.filter(arm__position=3).count() == 1


def test_event_ids_are_unique_per_experiment_not_globally(make_experiment, experiment, principal):
    other = make_experiment("other")
    other_principal = principal_for_key(api_key_create(name="other-server", experiments=[other]).raw_key)
    # Experiment B stores event id E first; A's own reward with id E is A's, not a conflict.
    (b,) = rewards_record([{"experiment": "other", "arm": 1, "value": 0, "event_id": "E"}], other_principal)
    (a,) = rewards_record([{"experiment": "churn", "arm": 0, "value": 1, "event_id": "E"}], principal)
    assert (a.status, b.status) == ("accepted", "accepted")
    # Within an experiment the idempotency is unchanged: same payload duplicate, other conflict.
    again, changed = rewards_record(
        [
            {"experiment": "churn", "arm": 0, "value": 1, "event_id": "E"},
            {"experiment": "churn", "arm": 1, "value": 1, "event_id": "E"},
        ],
        principal,
    )
    assert (again.status, changed.status) == ("duplicate", "conflict")
    stored = sorted(Reward.objects.filter(event_id="E").values_list("experiment__slug", "arm__position", "value"))
    assert stored == [("churn", 0, 1.0), ("other", 1, 0.0)]


def test_count_rewards_are_learned_as_their_outcomes_and_refused_where_they_do_not_fit(
    experiment, principal, make_experiment
):
    from mabdash.experiments.models import PolicyState, Reward
    from mabdash.experiments.services.learning import rewards_learn
    from mabdash.experiments.services.rebuild import policy_rebuild

    batch = [
        {"experiment": "churn", "arm": 1, "successes": 7, "trials": 10, "event_id": "hour-1"},
        {"experiment": "churn", "arm": 1, "value": 1},
        {"experiment": "churn", "arm": 1, "successes": 11, "trials": 10},
        {"experiment": "churn", "arm": 1, "successes": 3},
        {"experiment": "churn", "arm": 1, "trials": 3},
        {"experiment": "churn", "arm": 1, "value": 1, "trials": 3},
        {"experiment": "churn", "arm": 1, "successes": 1, "trials": 0},
        {"experiment": "churn", "arm": 1, "successes": 1, "trials": 10_001},
    ]
    assert statuses(rewards_record(batch, principal)) == [
        ("accepted", None),
        ("accepted", None),
        ("rejected", {"successes": ["must be at most trials (10)"]}),
        ("rejected", {"trials": ["required with successes"]}),
        ("rejected", {"successes": ["required with trials"]}),
        ("rejected", {"trials": ["give either value, or successes and trials, not both"]}),
        ("rejected", {"trials": ["must be in [1, 10000]"]}),
        ("rejected", {"trials": ["must be in [1, 10000]"]}),
    ]
    assert Reward.objects.get(event_id="hour-1").trials == 10
    # The same count again is a duplicate; a different count under the same id a conflict.
    again = rewards_record(
        [{"experiment": "churn", "arm": 1, "successes": 7, "trials": 10, "event_id": "hour-1"}], principal
    )
    other = rewards_record(
        [{"experiment": "churn", "arm": 1, "successes": 6, "trials": 10, "event_id": "hour-1"}], principal
    )
    assert (again[0].status, other[0].status) == ("duplicate", "conflict")
    rewards_learn(experiment.pk)
    state = PolicyState.objects.get(experiment=experiment).state
    assert (state["counts"][1], state["sums"][1], state["sumsq"][1]) == (11, 8.0, 8.0)  # 10 outcomes + 1
    rebuilt = policy_rebuild(experiment.pk).policy
    assert rebuilt.get_state() == state
    from mabdash.accounts.services import api_key_create

    bounded = make_experiment("bounded", reward_kind="bounded")
    bounded_client = principal_for_key(api_key_create(name="bounded-client", experiments=[bounded]).raw_key)
    refused = rewards_record([{"experiment": "bounded", "arm": 0, "successes": 1, "trials": 2}], bounded_client)
    assert statuses(refused) == [
        ("rejected", {"trials": ["count rewards (successes and trials) are for binary experiments"]})
    ]


def test_count_outcomes_spread_the_successes_evenly():
    from mabdash.experiments.services.ledger import outcomes

    arms, values = outcomes([2, 0], [3.0, 1.0], [8, 1])
    assert arms == [2] * 8 + [0]
    assert values == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0]
