"""The new rollback rules: coverage under every look, A/A false rollbacks, detection delays,
exact batching, state validation and the promotion test (seeded; small configurations of
``bench.guardrails``, whose full runs are in docs/BENCHMARKS.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.guardrails import run_aa, run_break
from policies.change import SHORTFALL_WINDOW, THRESHOLD, ChangeState, change_update, expected_delay
from policies.confidence import MeanSequence, sequence_update
from policies.detectors import change_rule, others_of, proven_best, relative_rule, shortfall_rule


def test_confidence_sequences_cover_the_mean_at_every_look():
    """Checked every 5 rewards for 2,000 rewards: each one-sided bound at level 0.05 may be
    wrong at *any* time in at most 5 % of streams."""
    rng = np.random.default_rng(1)
    streams, mean = 2000, 0.3
    sequence = MeanSequence.empty(streams)
    lower_wrong = np.zeros(streams, dtype=bool)
    upper_wrong = np.zeros(streams, dtype=bool)
    for _ in range(400):
        sequence = sequence_update(sequence, (rng.random((streams, 5)) < mean).astype(float))
        lower, upper = sequence.bounds(0.05)
        lower_wrong |= lower > mean
        upper_wrong |= upper < mean
    assert lower_wrong.mean() <= 0.05 and upper_wrong.mean() <= 0.05
    assert (lower_wrong.mean(), upper_wrong.mean()) == (0.005, 0.021)  # seeded: this run's exact figures


def test_confidence_sequences_are_exact_under_any_batching():
    rewards = np.random.default_rng(2).beta(2, 5, size=(1, 300))
    whole = sequence_update(MeanSequence.empty(), rewards)
    pieces = MeanSequence.empty()
    for start, stop in ((0, 1), (1, 17), (17, 150), (150, 300)):
        pieces = sequence_update(pieces, rewards[:, start:stop])
    assert whole.as_dict() == pieces.as_dict()


def test_a_stored_sequence_is_validated_by_name():
    with pytest.raises(ValueError, match=r"^count: must be a number"):
        MeanSequence.from_dict({"count": "x"})
    stored = sequence_update(MeanSequence.empty(), np.array([[1.0, 0.0, 1.0]])).as_dict()
    with pytest.raises(ValueError, match=r"^sum: must be at most count"):
        MeanSequence.from_dict({**stored, "sum": 4.0})


def test_equal_arms_are_rarely_rolled_back_however_often_the_rules_look():
    """A/A, 300 experiments of 3 equal arms, 3,000 rewards each, a look every 20."""
    rows = run_aa(3, lambda rng, shape: (rng.random(shape) < 0.5).astype(float), 300, 3000, seed=5)
    assert rows["relative"]["false_rollback_rate"] == 0.0
    assert rows["default"]["false_rollback_rate"] <= 0.01
    # Seeded: this run's exact figures — one arm of 900, by the shortfall rule.
    assert (rows["default"]["false_rollback_rate"], rows["shortfall"]["false_rollback_rate"]) == (1 / 900, 1 / 900)
    assert rows["normal_relative"]["false_rollback_rate"] > rows["default"]["false_rollback_rate"]


def test_a_model_that_breaks_is_caught_within_the_target_delays():
    collapse = run_break(0.85, 0.20, 1000, experiments=200, post=1000, seed=6)["default"]
    assert (collapse["median_delay"], collapse["missed_rate"]) == (20, 0.0)
    slide = run_break(0.85, 0.65, 1000, experiments=200, post=2000, seed=7)["default"]
    assert slide["median_delay"] <= 150 and slide["p90_delay"] <= 250 and slide["missed_rate"] == 0.0


def test_change_detector_alarms_at_the_same_reward_whatever_the_batching():
    rng = np.random.default_rng(3)
    stream = np.concatenate([rng.random(900) < 0.8, rng.random(300) < 0.3]).astype(float)
    whole, detection = change_rule(ChangeState.empty(), stream)
    alarms, state = [], ChangeState.empty()
    for start in range(0, stream.size, 7):
        state, piece = change_rule(state, stream[start : start + 7])
        if piece.fired:
            alarms.append(piece.evidence["alarm_at"])
    assert detection.fired and alarms[0] == detection.evidence["alarm_at"]
    assert whole.as_dict() == state.as_dict()
    assert ChangeState.from_dict(state.as_dict()).as_dict() == state.as_dict()
    assert detection.sentence().startswith("mean reward fell from 0.8")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"reference_count": -1}, r"^reference_count: must be at least 0"),
        ({"reference_count": 10, "reference_sum": 11.0}, r"^reference_sum: must be at most 10"),
        ({"reference_count": 0, "reference_sum": 0.0, "partial_count": 20}, r"^partial_count: must be below"),
        (
            {"reference_count": 0, "reference_sum": 0.0, "partial_count": 0, "partial_sum": 0.0, "blocks": [21.0]},
            r"^blocks: must be at most 20",
        ),
    ],
)
def test_a_stored_change_state_is_validated_by_name(stored, message):
    with pytest.raises(ValueError, match=message):
        ChangeState.from_dict(stored)


def test_lock_step_streams_must_share_their_block_position():
    state = ChangeState.empty(2)
    state.partial_count = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match=r"^partial_count: streams must be at the same position"):
        change_update(state, np.zeros((2, 3)))


def test_relative_rule_names_the_better_arm_and_the_promotion_test_agrees():
    rng = np.random.default_rng(4)
    rewards = np.stack([(rng.random(3000) < p).astype(float) for p in (0.5, 0.6, 0.5)])
    sequences = sequence_update(MeanSequence.empty(3), rewards)
    fired = [d for d in relative_rule(sequences) if d.fired]
    assert [d.arm for d in fired] == [0] and fired[0].evidence["best_arm"] == 1  # arm 2: not yet proven
    best = proven_best(sequences, [True, True, True], alpha=0.05)
    assert best is not None and best.arm == 1 and best.lower > best.runner_up_upper
    assert best.sentence({1: "tree:2"}, 0.05).startswith("tree:2 is better than every other active arm with 95%")
    assert proven_best(sequences, [True, False, True], alpha=0.05) is None  # 0.5 vs 0.5: nothing proven


def _reference_alarm(stream: np.ndarray, threshold: float, min_reference: int, block: int = 20, window: int = 2000):
    """The GLR written the slow, obvious way: at every block end, every candidate change
    point at a block boundary within the last ``window`` rewards, Bernoulli KL by hand."""

    def kl(p: float, q: float) -> float:
        q = min(max(q, 1e-12), 1 - 1e-12)
        first = p * np.log(p / q) if p > 0 else 0.0
        second = (1 - p) * np.log((1 - p) / (1 - q)) if p < 1 else 0.0
        return first + second

    for end in range(block, stream.size + 1, block):
        seen = stream[:end]
        total = seen.mean()
        best = 0.0
        for recent in range(block, min(window, end) + 1, block):
            before, after = seen[: end - recent], seen[end - recent :]
            if before.size < min_reference or after.mean() >= before.mean():
                continue
            best = max(best, before.size * kl(before.mean(), total) + after.size * kl(after.mean(), total))
        if best >= threshold:
            return end
    return None


@pytest.mark.parametrize("seed", range(6))
def test_the_vectorised_change_detector_matches_the_obvious_implementation(seed):
    rng = np.random.default_rng(seed)
    healthy, broken = rng.integers(60, 1500), rng.uniform(0.1, 0.6)
    stream = np.concatenate([rng.random(healthy) < 0.8, rng.random(2500) < broken]).astype(float)
    expected = _reference_alarm(stream, 12.5, 40)
    state, detection = change_rule(ChangeState.empty(), stream)
    assert detection.evidence["alarm_at"] == expected
    pieces = ChangeState.empty()
    found = None
    for start in range(0, stream.size, 37):  # odd batches: blocks close across batches
        pieces, piece = change_rule(pieces, stream[start : start + 37])
        found = found or piece.evidence["alarm_at"]
    assert found == expected and pieces.as_dict() == state.as_dict()


def _statistic_at_the_change(before: float, after: float, healthy: int, bad: int) -> float:
    """The GLR at the true change point with every mean at its expected value, written out."""

    def kl(p: float, q: float) -> float:
        return sum(a * math.log(a / b) for a, b in ((p, q), (1 - p, 1 - q)) if a > 0)

    overall = (healthy * before + bad * after) / (healthy + bad)
    return healthy * kl(before, overall) + bad * kl(after, overall)


@pytest.mark.parametrize(
    ("before", "after", "healthy", "expected"),
    [(0.85, 0.20, 200, 14), (0.85, 0.65, 200, 279), (0.85, 0.65, 1000, 118), (0.5, 0.3, 1000, 179)],
)
def test_expected_delay_is_the_first_count_whose_statistic_reaches_the_threshold(before, after, healthy, expected):
    assert expected_delay(before, after, healthy) == expected
    assert _statistic_at_the_change(before, after, healthy, expected) >= THRESHOLD
    assert _statistic_at_the_change(before, after, healthy, expected - 1) < THRESHOLD


def test_a_short_history_cannot_show_a_small_drop():
    """0.90 → 0.85: the history's whole evidence, healthy · kl(0.90, 0.85), is 2.2 nats after
    200 rewards and 10.9 after 1,000 — under the threshold however long the drop lasts."""
    assert expected_delay(0.90, 0.85, 200) is None
    assert expected_delay(0.90, 0.85, 1000) is None
    assert expected_delay(0.90, 0.85, 10_000) == 1156
    with pytest.raises(ValueError, match="after: must be below before"):
        expected_delay(0.5, 0.6, 100)


def test_the_yardstick_tracks_the_simulated_change_rule():
    """Seeded simulation of the change rule alone: its median delay after a short history is
    near the noise-free yardstick, and the drop the yardstick calls invisible is missed."""
    slide = run_break(0.85, 0.65, 200, experiments=200, post=3000, seed=11)["change"]
    assert expected_delay(0.85, 0.65, 200) == 279
    assert 0.7 * 279 <= slide["median_delay"] <= 1.2 * 279
    assert (slide["median_delay"], slide["missed_rate"]) == (200.0, 0.07)  # seeded: this run's exact figures
    small = run_break(0.90, 0.85, 200, experiments=200, post=5000, seed=12)["change"]
    assert small["missed_rate"] == 0.99


# ----------------------------------------------------------------- the shortfall variant
def _lockstep_shortfall_by_hand(rewards: np.ndarray, threshold: float, min_reference: int = 40) -> list[int]:
    """The shortfall statistic written out for lock-step arms (one block of 20 per look):
    at every look, for every arm and every candidate change point j looks back, the arm's
    last j blocks against its own earlier rewards pooled with the other arms' last j blocks.
    Returns, per arm, the look of its first alarm (0 = never)."""

    def kl(p: float, q: float) -> float:
        q = min(max(q, 1e-12), 1 - 1e-12)
        return sum(a * math.log(a / b) for a, b in ((p, q), (1 - p, 1 - q)) if a > 0)

    arms, looks, block = rewards.shape[0], rewards.shape[1] // 20, 20
    sums = rewards.reshape(arms, looks, block).sum(axis=2)
    first = [0] * arms
    for look in range(1, looks + 1):
        for arm in range(arms):
            best = 0.0
            for back in range(1, min(look, 250) + 1):
                recent = sums[arm, look - back : look].sum()
                others = sums[:, look - back : look].sum() - recent
                own_before = sums[arm, : look - back].sum()
                n2, n_ref = back * block, (look - back) * block + back * block * (arms - 1)
                m2, m_ref = recent / n2, (own_before + others) / n_ref
                if n_ref < min_reference or m2 >= m_ref:
                    continue
                m = (recent + own_before + others) / (n2 + n_ref)
                best = max(best, n2 * kl(m2, m) + n_ref * kl(m_ref, m))
            if best >= threshold and not first[arm]:
                first[arm] = look
    return first


@pytest.mark.parametrize("seed", range(3))
def test_the_vectorised_shortfall_detector_matches_the_obvious_implementation(seed):
    rng = np.random.default_rng(seed)
    means = np.array([0.85, 0.8, 0.85])
    rewards = np.concatenate(
        [rng.random((3, 200)) < means[:, None], rng.random((3, 600)) < np.array([0.85, 0.55, 0.85])[:, None]], axis=1
    ).astype(float)
    expected = _lockstep_shortfall_by_hand(rewards, THRESHOLD)
    state = ChangeState.empty(3, window=SHORTFALL_WINDOW, alternatives=True)
    found = [0, 0, 0]
    for look in range(rewards.shape[1] // 20):
        batch = rewards[:, 20 * look : 20 * (look + 1)]
        own = batch.sum(axis=1)
        state, result = change_update(state, batch, others=(np.full(3, 40.0), own.sum() - own))
        for arm in range(3):
            if result.alarm_at[arm] and not found[arm]:
                found[arm] = look + 1
    assert found == expected and found[1] > 10  # the broken arm alarms, after its break


def test_a_block_opening_within_a_batch_counts_only_the_other_arms_rewards_after_it():
    state = ChangeState.empty(window=SHORTFALL_WINDOW, alternatives=True)
    state, _ = shortfall_rule(state, [1.0] * 10, (30, 20.0))  # the first block opened with this batch
    state, _ = shortfall_rule(state, [1.0] * 25, (100, 70.0))  # closes it; the next opens within the batch
    stored = state.as_dict()
    assert (stored["others_start_counts"], stored["others_start_sums"]) == ([0], [0.0])  # before it began
    assert stored["others_open"] == [130, 90.0]  # the open one: not before the end of the batch it opened in
    assert (stored["others_count"], stored["others_sum"], stored["partial_count"]) == (130, 90.0, 15)
    state, _ = shortfall_rule(state, [], (5, 5.0))  # nothing of its own: only the others' totals move
    assert state.as_dict()["others_open"] == [130, 90.0] and state.as_dict()["others_count"] == 135
    state, _ = shortfall_rule(state, [1.0] * 5, (10, 10.0))  # closes the open block, opens one with the next batch
    assert (state.as_dict()["others_start_counts"], state.as_dict()["others_start_sums"]) == ([0, 130], [0.0, 90.0])
    assert state.as_dict()["others_open"] == [145, 105.0] and state.as_dict()["partial_count"] == 0


def test_an_arm_that_served_nothing_for_a_while_does_not_count_what_the_others_earned_meanwhile():
    """The replay's naive deployment: a model serves alone after the one before it was rolled
    back; the others' earlier rewards are another period, not the reference of its first block."""
    state = ChangeState.empty(window=SHORTFALL_WINDOW, alternatives=True)
    for _ in range(30):  # another model serves; this one waits
        state, _ = shortfall_rule(state, [], (100, 87.0))
    state, detection = shortfall_rule(state, [0.0] * 200, (0, 0.0))  # alone, and poor
    assert state.as_dict()["others_start_counts"] == [3000] * 10  # every block: nothing since
    assert not detection.fired and detection.evidence["statistic"] == 0.0


def test_the_shortfall_rule_alarms_at_the_same_reward_whether_its_state_is_stored_or_kept():
    rng = np.random.default_rng(8)
    kept = ChangeState.empty(window=SHORTFALL_WINDOW, alternatives=True)
    stored = kept.as_dict()
    alarms = []
    for batch in range(40):
        mean = 0.85 if batch < 8 else 0.6
        own = (rng.random(int(rng.integers(5, 40))) < mean).astype(float).tolist()
        others_count = int(rng.integers(10, 80))
        others = (others_count, float((rng.random(others_count) < 0.85).sum()))
        kept, detection = shortfall_rule(kept, own, others)
        loaded, again = shortfall_rule(
            ChangeState.from_dict(stored, window=SHORTFALL_WINDOW, alternatives=True), own, others
        )
        stored = loaded.as_dict()
        assert again == detection and stored == kept.as_dict()
        if detection.fired:
            alarms.append(detection)
    first = alarms[0]
    assert first.rule == "shortfall" and first.evidence["others_count"] > 0
    assert first.sentence({0: "tree:2"}).startswith("mean reward 0.")
    assert "and the other models'" in first.sentence() and "shortfall evidence" in first.sentence()


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"others_count": -1}, r"^others_count: must be at least 0"),
        ({"others_count": 10, "others_sum": 11.0}, r"^others_sum: must be at most 10"),
        ({"others_count": 10, "others_sum": 5.0, "others_open": [11, 5.0]}, r"^others_open: count must be at most"),
        ({"others_count": 10, "others_sum": 5.0, "others_open": "x"}, r"^others_open: must be a \[count, sum\] pair"),
        ({"blocks": [10.0], "others_start_counts": []}, r"^others_start_counts: must have 1 entries, got 0"),
        (
            {"blocks": [10.0], "others_start_counts": [1.5], "others_start_sums": [1.0]},
            r"^others_start_counts: must contain only integers",
        ),
        (
            {"blocks": [10.0], "others_start_counts": [2], "others_start_sums": [3.0]},
            r"^others_start_sums: each must be at most",
        ),
        (
            {"blocks": [10.0], "others_start_counts": [6], "others_start_sums": [3.0]},
            r"^others_start_counts: totals must not decrease",
        ),
        (
            {"blocks": [10.0], "others_start_counts": [4], "others_start_sums": [3.0]},
            r"^others_start_sums: totals must not decrease",
        ),
    ],
)
def test_a_stored_shortfall_state_is_validated_by_name(stored, message):
    base = {
        "reference_count": 0,
        "reference_sum": 0.0,
        "partial_count": 0,
        "partial_sum": 0.0,
        "blocks": [],
        "others_count": 10,
        "others_sum": 5.0,
        "others_open": [4, 2.0],
    }
    with pytest.raises(ValueError, match=message):
        ChangeState.from_dict({**base, **stored}, window=SHORTFALL_WINDOW, alternatives=True)


def test_the_change_and_shortfall_rules_refuse_each_others_state_and_bad_others():
    with pytest.raises(ValueError, match=r"^state: a shortfall state; use shortfall_rule"):
        change_rule(ChangeState.empty(alternatives=True), [1.0])
    with pytest.raises(ValueError, match=r"^state: a change state; use change_rule"):
        shortfall_rule(ChangeState.empty(), [1.0], (1, 1.0))
    with pytest.raises(ValueError, match=r"^others.sum: must be at most 3"):
        shortfall_rule(ChangeState.empty(alternatives=True), [1.0], (3, 4.0))
    with pytest.raises(ValueError, match=r"^others: the other arms' \(count, sum\) are given for, and only for"):
        change_update(ChangeState.empty(), np.ones((1, 3)), others=(np.ones(1), np.ones(1)))


def test_a_model_that_breaks_early_is_caught_by_the_shortfall_rule_within_the_target_delays():
    """After only 200 healthy rewards the change rule alone is slow (median 240 for
    0.85 → 0.65, docs/BENCHMARKS.md); the default, with the shortfall rule, is not."""
    slide = run_break(0.85, 0.65, 200, experiments=200, post=2000, seed=13)
    assert slide["default"]["median_delay"] <= 150 and slide["default"]["p90_delay"] <= 250
    assert (slide["shortfall"]["median_delay"], slide["shortfall"]["p90_delay"]) == (140.0, 220.0)  # seeded
    assert slide["default"]["missed_rate"] == 0.0 and slide["change"]["median_delay"] > 150
    coin = run_break(0.5, 0.3, 200, experiments=200, post=2000, seed=14)["default"]
    assert coin["median_delay"] <= 200 and coin["missed_rate"] == 0.0
    small = run_break(0.90, 0.85, 200, experiments=200, post=5000, seed=15)["default"]
    assert small["missed_rate"] <= 0.01


@pytest.mark.parametrize(
    ("before", "after", "healthy", "expected"),
    [(0.85, 0.65, 200, 140), (0.5, 0.3, 200, 201), (0.90, 0.85, 200, 1565)],
)
def test_the_shortfall_yardstick_pools_the_other_arms_over_the_same_period(before, after, healthy, expected):
    def statistic(bad: int) -> float:
        def kl(p: float, q: float) -> float:
            return sum(a * math.log(a / b) for a, b in ((p, q), (1 - p, 1 - q)) if a > 0)

        reference = healthy + 2 * bad
        overall = (reference * before + bad * after) / (reference + bad)
        return reference * kl(before, overall) + bad * kl(after, overall)

    assert expected_delay(before, after, healthy, alternatives=2, window=SHORTFALL_WINDOW) == expected
    assert statistic(expected) >= THRESHOLD > statistic(expected - 1)


def test_each_arm_gets_the_other_arms_count_and_sum_of_the_batch():
    counts, sums = others_of([3, 0, 2], [0.1 + 0.2 + 0.7, 0.0, 2.0])
    assert counts.tolist() == [2.0, 5.0, 3.0] and sums.tolist() == [2.0, 3.0, 1.0]
    assert (sums <= counts).all()  # rounding never gives a sum above its count
    with pytest.raises(ValueError, match=r"^sums: must be a one-dimensional array of length 3"):
        others_of([1, 2, 3], [1.0])
