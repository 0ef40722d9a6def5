"""The learning module: exactly-once application, versions, snapshots, exact rebuilds."""

from __future__ import annotations

import numpy as np
import pytest

import policies
from mabdash.accounts.authentication import principal_for_key
from mabdash.experiments.models import AllocationSnapshot, PolicyState, Reward
from mabdash.experiments.services import learning, rebuild
from mabdash.experiments.services.experiments import experiment_add_arm
from mabdash.experiments.services.registry import model_version_register
from mabdash.experiments.services.rewards import rewards_record

pytestmark = pytest.mark.django_db


def post(principal, slug: str, pairs) -> None:
    outcomes = rewards_record([{"experiment": slug, "arm": a, "value": v} for a, v in pairs], principal)
    assert {o.status for o in outcomes} == {"accepted"}


@pytest.fixture
def principal(client_key):
    return principal_for_key(client_key)


def seeded_pairs(n: int, seed: int, kind: str = "binary"):
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, 3, n)
    values = (rng.random(n) < np.array([0.2, 0.5, 0.35])[arms]).astype(float) if kind == "binary" else rng.random(n)
    return list(zip(arms.tolist(), values.tolist(), strict=True))


def test_applying_learns_each_pending_reward_exactly_once(experiment, principal):
    pairs = seeded_pairs(250, 1)
    post(principal, "churn", pairs)
    result = learning.rewards_learn(experiment.pk)
    assert (result.applied, result.versions, result.more_pending) == (250, 1, False)
    state = PolicyState.objects.get(experiment=experiment)
    expected = policies.make_policy("thompson", 3, seed=0)
    expected.update([a for a, _ in pairs], [v for _, v in pairs])
    assert state.state["counts"] == expected.counts_.tolist()
    assert state.state["sums"] == expected.sums_.tolist()
    assert (state.version, state.applied_count) == (1, 250)
    assert learning.rewards_learn(experiment.pk).applied == 0  # a redelivered task changes nothing
    assert PolicyState.objects.get(experiment=experiment).version == 1


def test_large_backlogs_are_applied_in_versioned_batches(experiment, principal, settings):
    settings.MABDASH = {**settings.MABDASH, "LEARNING_BATCH": 40, "LEARNING_MAX_PER_TASK": 100}
    post(principal, "churn", seeded_pairs(130, 2))
    first = learning.rewards_learn(experiment.pk)
    assert (first.applied, first.versions, first.more_pending) == (100, 3, True)
    second = learning.rewards_learn(experiment.pk)
    assert (second.applied, second.versions, second.more_pending) == (30, 1, False)
    versions = sorted(set(Reward.objects.values_list("applied_version", flat=True)))
    assert versions == [1, 2, 3, 4]


def test_late_rewards_are_never_learned(experiment, principal):
    Reward.objects.all().delete()
    post(principal, "churn", [(0, 1.0)])
    Reward.objects.update(learn=False)
    assert learning.rewards_learn(experiment.pk).applied == 0


def test_applying_bumps_what_decide_serves_and_records_a_snapshot(experiment, principal, settings):
    creation = AllocationSnapshot.objects.get(experiment=experiment)
    assert (creation.policy_version, creation.values["reward_counts"]) == (0, [0, 0, 0])
    settings.MABDASH = {**settings.MABDASH, "SNAPSHOT_MIN_SECONDS": 0}
    serving_version = experiment.serving_version
    post(principal, "churn", seeded_pairs(50, 3))
    learning.rewards_learn(experiment.pk)
    experiment.refresh_from_db()
    assert experiment.serving_version == serving_version + 1
    snapshot = AllocationSnapshot.objects.filter(experiment=experiment).latest("created_at")
    state = PolicyState.objects.get(experiment=experiment)
    assert snapshot.values["allocation"] == [round(p, 6) for p in state.allocation]
    assert snapshot.values["reward_counts"] == state.state["counts"]
    assert snapshot.policy_version == 1


def test_snapshots_are_rate_limited(experiment, principal, settings):
    settings.MABDASH = {**settings.MABDASH, "SNAPSHOT_MIN_SECONDS": 60}
    post(principal, "churn", seeded_pairs(5, 4))
    learning.rewards_learn(experiment.pk)
    assert AllocationSnapshot.objects.filter(experiment=experiment).count() == 1  # only the one at creation


@pytest.mark.parametrize("kind", list(policies.POLICIES))
def test_rebuilding_from_the_ledger_reproduces_the_live_state_exactly(make_experiment, kind, settings):
    settings.MABDASH = {**settings.MABDASH, "LEARNING_BATCH": 37}
    params = {"budget": 60} if kind == "ab_test" else {"gamma": 0.9} if kind == "discounted_thompson" else {}
    experiment = make_experiment(
        f"rebuild-{kind.replace('_', '-')}", policy_kind=kind, policy_params=params, reward_kind="bounded"
    )
    from mabdash.accounts.services import api_key_create

    principal = principal_for_key(api_key_create(name="k", experiments=[experiment]).raw_key)
    post(principal, experiment.slug, seeded_pairs(100, 5, "bounded"))
    learning.rewards_learn(experiment.pk)
    newcomer = model_version_register(
        name="late-joiner", version=kind, artifact_uri="s3://x", validation_score=0.9, actor="t"
    )
    experiment_add_arm(experiment, newcomer.pk)
    with learning.policy_session(experiment.pk) as session:
        session.set_active(0, False)
    post(principal, experiment.slug, [*seeded_pairs(120, 6, "bounded"), (3, 0.75), (3, 0.5)])
    learning.rewards_learn(experiment.pk)
    with learning.policy_session(experiment.pk) as session:
        session.set_active(0, True)
    post(principal, experiment.slug, seeded_pairs(30, 7, "bounded"))
    learning.rewards_learn(experiment.pk)

    live = PolicyState.objects.get(experiment=experiment)
    rebuilt = rebuild.policy_rebuild(experiment.pk)
    assert rebuilt.policy.get_state() == live.state
    assert (rebuilt.version, rebuilt.applied_count, rebuilt.checkpoint_version) == (live.version, 252, None)
    assert rebuild.policy_replace_with_rebuild(experiment.pk) is False
