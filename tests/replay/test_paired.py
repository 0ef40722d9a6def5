"""Paired differences on hand-made numbers."""

from __future__ import annotations

import pytest

from replay.paired import against_best, all_pairs, paired_difference


def test_a_paired_difference_and_its_interval_by_hand():
    # differences 0.02, 0.00, 0.04: mean 0.02, sd 0.02, se 0.02/√3, t(0.975, 2) = 4.302653
    result = paired_difference([0.82, 0.80, 0.84], [0.80, 0.80, 0.80], ("eg", "naive"))
    half = 4.302652729911275 * 0.02 / 3**0.5
    assert (result.first, result.second, result.seeds) == ("eg", "naive", 3)
    assert result.mean == pytest.approx(0.02, abs=1e-12)
    assert (result.lower, result.upper) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert not result.significant  # −0.0297 … +0.0697
    assert result.text() == "+0.0200 (−0.0297 … +0.0697)"


def test_pairing_removes_what_the_seeds_share():
    # Both strategies move with the stream; one is always 0.01 better: unpaired intervals overlap,
    # the paired one is exactly +0.01.
    stream = [0.70, 0.90, 0.80, 0.60]
    better = [s + 0.01 for s in stream]
    result = paired_difference(better, stream, ("b", "a"))
    assert result.mean == pytest.approx(0.01) and result.significant
    assert result.upper - result.lower == pytest.approx(0.0, abs=1e-12)
    assert result.text() == "+0.0100 (+0.0100 … +0.0100) *"


def test_every_strategy_against_the_best_and_all_pairs():
    per_seed = {"naive": [0.80, 0.81], "ucb1": [0.85, 0.84], "thompson": [0.83, 0.84]}
    against = against_best(per_seed)
    assert [(d.first, d.second) for d in against] == [("naive", "ucb1"), ("thompson", "ucb1")]
    assert against[0].mean == pytest.approx(-0.04)
    assert [(d.first, d.second) for d in all_pairs(per_seed)] == [
        ("naive", "ucb1"),
        ("naive", "thompson"),
        ("ucb1", "thompson"),
    ]


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [([0.1], [0.2], "at least 2 paired seeds"), ([0.1, 0.2], [0.1], "one value per seed")],
)
def test_bad_input_is_refused_naming_the_field(first, second, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(first, second)
