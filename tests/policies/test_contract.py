"""The contract every strategy honours, checked over all of them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policies
from tests.policies.conftest import ALL_KINDS, SMALL_PARAMS, bernoulli_batch, build


def trained(kind: str, n: int = 300, seed: int = 3) -> policies.Policy:
    policy = build(kind)
    policy.update(*bernoulli_batch(n, [0.3, 0.6, 0.5], seed))
    return policy


def test_every_paper_strategy_is_registered():
    assert set(policies.PAPER_POLICIES) <= set(policies.POLICIES)
    assert len(policies.PAPER_POLICIES) == 6


def test_get_params_rebuilds_the_same_policy(kind):
    policy = build(kind, seed=5)
    params = policy.get_params()
    assert params["seed"] == 5
    for name, value in SMALL_PARAMS[kind].items():
        assert params[name] == value
    clone = policies.make_policy(kind, policy.n_arms, params)
    assert clone.get_params() == params


def test_unknown_parameter_is_rejected_by_name(kind):
    with pytest.raises(ValueError, match=r"^params\.bogus: unknown parameter"):
        policies.make_policy(kind, 3, {**SMALL_PARAMS[kind], "bogus": 1})


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"^kind: unknown policy 'greedy'; expected one of naive"):
        policies.make_policy("greedy", 3)


@pytest.mark.parametrize("n_arms", [0, -1, 1.5, True, "3"])
def test_bad_number_of_arms(kind, n_arms):
    with pytest.raises(ValueError, match=r"^n_arms: must be a positive integer"):
        build(kind, n_arms=n_arms) if kind != "validation" else policies.make_policy(kind, n_arms, {"scores": []})


batches = st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 1.0, allow_nan=False)), min_size=1, max_size=60)


@pytest.mark.parametrize("kind", ALL_KINDS)
@settings(max_examples=60, deadline=None)
@given(pairs=batches, cuts=st.lists(st.integers(0, 60), max_size=6))
def test_batch_update_equals_one_by_one(kind, pairs, cuts):
    arms = np.array([a for a, _ in pairs])
    rewards = np.array([r for _, r in pairs])
    whole, one_by_one, chunked = build(kind), build(kind), build(kind)
    whole.update(arms, rewards)
    for arm, reward in pairs:
        one_by_one.update([arm], [reward])
    edges = [0, *sorted(c for c in cuts if c < len(pairs)), len(pairs)]
    for lo, hi in itertools.pairwise(edges):
        chunked.update(arms[lo:hi], rewards[lo:hi])
    assert whole.get_state() == one_by_one.get_state() == chunked.get_state()
    assert np.array_equal(whole.allocation(), one_by_one.allocation())


def test_allocation_is_a_distribution(kind):
    for policy in (build(kind), trained(kind)):
        allocation = policy.allocation()
        assert allocation.shape == (3,)
        assert (allocation >= 0).all()
        assert allocation.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kind", ALL_KINDS)
@settings(max_examples=40, deadline=None)
@given(
    min_share=st.floats(0.0, 0.5),
    pairs=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0.0, 0.25, 1.0])), max_size=60),
    excluded=st.sets(st.integers(0, 2), max_size=2),
)
def test_every_active_arm_gets_at_least_the_floor(kind, min_share, pairs, excluded):
    policy = build(kind, min_share=min_share)
    if pairs:
        policy.update([a for a, _ in pairs], [r for _, r in pairs])
    for arm in excluded:
        policy.exclude(arm)
    allocation = policy.allocation()
    active = policy.active_
    floor = min(min_share, 1 / active.sum())
    assert allocation.sum() == pytest.approx(1.0, abs=1e-12)
    assert (allocation[active] >= floor - 1e-12).all(), (allocation, floor)
    assert (allocation[~active] == 0).all()


def test_choose_follows_the_allocation(kind):
    policy = trained(kind)
    allocation = policy.allocation()
    n = 200_000
    picks = policy.choose(np.random.default_rng(99), n)
    assert picks.dtype == np.int64 and picks.shape == (n,)
    frequencies = np.bincount(picks, minlength=3) / n
    tolerance = 5 * np.sqrt(allocation * (1 - allocation) / n)
    assert (np.abs(frequencies - allocation) <= tolerance).all()
    assert (frequencies[allocation == 0] == 0).all()
    single = policy.choose(np.random.default_rng(1))
    assert isinstance(single, int) and 0 <= single < 3


def test_expected_rewards_and_belief_have_one_entry_per_arm(kind):
    policy = trained(kind)
    means = policy.expected_rewards()
    assert means.shape == (3,)
    belief = policy.belief()
    for key in ("mean", "lower", "upper"):
        assert np.asarray(belief[key]).shape == (3,)
    known = ~np.isnan(belief["lower"])
    assert (belief["lower"][known] <= belief["mean"][known] + 1e-12).all()
    assert (belief["mean"][known] <= belief["upper"][known] + 1e-12).all()
    best = policy.probability_best()
    assert best.sum() == pytest.approx(1.0)
    if kind not in ("discounted_thompson", "sw_ucb"):  # their test memory is a few rewards
        assert int(np.argmax(best)) == 1


def test_state_round_trips_through_json(kind):
    policy = trained(kind)
    policy.exclude(0)
    state = json.loads(json.dumps(policy.get_state()))
    rebuilt = policies.policy_from_state(state)
    assert rebuilt.get_state() == policy.get_state()
    assert np.array_equal(rebuilt.allocation(), policy.allocation())
    more = bernoulli_batch(50, [0.3, 0.6, 0.5], 8)
    policy.update(*more)
    rebuilt.update(*more)
    assert rebuilt.get_state() == policy.get_state()


def test_state_holds_only_plain_json_types(kind):
    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (bool, int, float, str)

    assert plain(trained(kind).get_state())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("counts"), r"^counts: must be a list"),
        (lambda s: s.update(counts=[1, 2]), r"^counts: must have 3 entries, got 2"),
        (lambda s: s.update(counts=[1, -2, 3]), r"^counts: must not be negative"),
        (lambda s: s.update(counts=[1.5, 2, 3]), r"^counts: must contain only integers"),
        (lambda s: s.update(sums=[1.0, float("nan"), 0.0]), r"^sums: must be finite"),
        (lambda s: s.update(sumsq=[1.0, "x", 0.0]), r"^sumsq: must contain only numbers"),
        (lambda s: s.update(active=[False, False, False]), r"^active: at least one arm"),
        (lambda s: s.update(active=[1, 0, 1]), r"^active: must contain only booleans"),
        (lambda s: s.update(n_arms=0), r"^n_arms: must be at least 1"),
        (lambda s: s.pop("n_arms"), r"^n_arms: missing from state"),
        (lambda s: s.update(params=[]), r"^params: must be a JSON object"),
        (lambda s: s["params"].update(bogus=1), r"^params\.bogus: unknown parameter"),
        (lambda s: s.update(kind="nope"), r"^kind: unknown policy"),
        (lambda s: s.update(counts=[0, *s["counts"][1:]]), r"^sums: arm 0 has no rewards"),
        (lambda s: s.update(sumsq=[0.0, *s["sumsq"][1:]]), r"^sumsq: arm 0's sum of squares is below"),
    ],
)
def test_bad_state_is_rejected_naming_the_field(kind, mutate, message):
    state = json.loads(json.dumps(trained(kind).get_state()))
    mutate(state)
    with pytest.raises(ValueError, match=message):
        policies.policy_from_state(state)


def test_state_must_be_an_object():
    with pytest.raises(ValueError, match=r"^state: must be a JSON object"):
        policies.policy_from_state([1, 2])


@pytest.mark.parametrize(
    ("arms", "rewards", "message"),
    [
        ([0, 1], [1.0], r"^rewards: length 1 does not match arms length 2"),
        ([0, 3], [1.0, 0.0], r"^arms: every index must be in \[0, 3\)"),
        ([0, -1], [1.0, 0.0], r"^arms: every index must be in"),
        ([0.0, 1.0], [1.0, 0.0], r"^arms: must be integers"),
        ([0, 1], [1.0, float("nan")], r"^rewards: must be finite"),
        ([0, 1], [float("inf"), 0.0], r"^rewards: must be finite"),
        ([[0, 1]], [[1.0, 0.0]], r"^arms, rewards: must be one-dimensional"),
    ],
)
def test_bad_update_is_rejected_and_learns_nothing(kind, arms, rewards, message):
    policy = trained(kind)
    before = policy.get_state()
    with pytest.raises(ValueError, match=message):
        policy.update(arms, rewards)
    assert policy.get_state() == before


def test_empty_update_changes_nothing(kind):
    policy = trained(kind)
    before = policy.get_state()
    policy.update([], [])
    assert policy.get_state() == before


def test_excluded_arm_gets_nothing_and_the_rest_is_renormalised(kind):
    policy = trained(kind)
    original = policy.allocation().copy()
    best = int(np.argmax(original))
    policy.exclude(best)
    allocation = policy.allocation()
    assert allocation[best] == 0.0
    assert allocation.sum() == pytest.approx(1.0)
    assert not policy.active_[best]
    assert (policy.choose(np.random.default_rng(0), 5000) != best).all()
    policy.include(best)
    assert np.array_equal(policy.allocation(), original)


def test_excluded_arm_still_learns_from_late_rewards(kind):
    policy = trained(kind)
    policy.exclude(2)
    count = policy.counts_[2]
    policy.update([2, 2], [1.0, 0.0])
    assert policy.counts_[2] == count + 2


def test_excluding_every_arm_is_an_error(kind):
    policy = trained(kind)
    policy.exclude(0)
    policy.exclude(1)
    with pytest.raises(ValueError, match=r"^arm: cannot exclude arm 2, it is the last active arm"):
        policy.exclude(2)
    assert policy.active_.tolist() == [False, False, True]
    with pytest.raises(ValueError, match=r"^arm: must be below n_arms=3"):
        policy.exclude(3)


def test_adding_an_arm_to_a_running_policy(kind):
    policy = trained(kind)
    extra = {"score": 0.4} if kind == "validation" else {}
    index = policy.add_arm(**extra)
    assert index == 3 and policy.n_arms == 4
    assert policy.counts_.tolist()[3] == 0 and policy.active_[3]
    assert policy.allocation().shape == (4,)
    assert policy.allocation().sum() == pytest.approx(1.0)
    policy.update([3, 3], [1.0, 1.0])
    assert policy.counts_[3] == 2
    rebuilt = policies.policy_from_state(json.loads(json.dumps(policy.get_state())))
    assert rebuilt.get_state() == policy.get_state()


def test_adding_an_arm_with_an_unknown_parameter_is_an_error(kind):
    with pytest.raises(ValueError, match=r"^colour: not a per-arm parameter"):
        trained(kind).add_arm(colour=1)


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        (
            {"counts": [1, 0], "sums": [5.0, 0.0], "sumsq": [25.0, 0.0]},
            r"^sums: arm 0's sum must be within \[0, counts\]",
        ),
        ({"counts": [2, 0], "sums": [-0.5, 0.0], "sumsq": [0.25, 0.0]}, r"^sums: arm 0's sum must be within"),
        (
            {"counts": [2, 1], "sums": [1.0, 0.5], "sumsq": [1.0, 0.9]},
            r"^sumsq: arm 1's sum of squares exceeds its sum",
        ),
    ],
)
def test_a_beta_thompson_state_must_come_from_rewards_in_0_1(evidence, message):
    state = policies.Thompson(2).get_state()
    state.update(evidence)
    with pytest.raises(ValueError, match=message):
        policies.policy_from_state(state)


@pytest.mark.parametrize("kind", ALL_KINDS)
@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(["counts", "sums", "sumsq"]), arm=st.integers(0, 2), value=st.floats(-1e6, 1e6))
def test_a_tampered_state_loads_consistently_or_is_refused_by_name(kind, field, arm, value):
    state = trained(kind).get_state()
    state[field][arm] = int(value) if field == "counts" else value
    try:
        policy = policies.policy_from_state(state)
    except ValueError as error:
        assert str(error).split(":")[0] in {"counts", "sums", "sumsq"}, error
        return
    counts, sums, sumsq = policy.counts_, policy.sums_, policy.sumsq_
    assert (sumsq * counts >= sums * sums - 1e-6 * np.maximum(1, sumsq * counts)).all()
