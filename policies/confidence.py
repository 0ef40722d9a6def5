"""Anytime-valid confidence sequences for the mean of rewards in [0, 1].

A confidence sequence (CS) is a sequence of intervals that contain the true mean at *every*
time simultaneously with probability at least ``1 - α``: a rule may look after every
reward, for as long as an experiment runs, and stop whenever it likes, without the error
growing with the number of looks (a fixed-n interval checked repeatedly does not have
that property: its error grows with every look).

The construction is the predictable plug-in empirical-Bernstein CS of

    I. Waudby-Smith and A. Ramdas (2024), "Estimating means of bounded random variables
    by betting", Journal of the Royal Statistical Society, Series B 86(1), 1–27
    (arXiv:2010.09686), Theorem 2 with the tuning of its equations (13)–(14).

For rewards ``x_1, x_2, …`` in [0, 1] with (conditional) mean μ and predictable bets
``λ_i`` in (0, 1), the process ``exp(Σ λ_i (x_i − μ) − Σ v_i ψ(λ_i))`` with
``v_i = 4 (x_i − μ̂_{i−1})²`` and ``ψ(λ) = (−log(1 − λ) − λ) / 4`` is a non-negative
supermartingale, so by Ville's inequality, with probability at least ``1 − α``, for all t,

    μ ≤ (Σ λ_i x_i + log(1/α) + Σ v_i ψ(λ_i)) / Σ λ_i          (the upper bound)

and symmetrically for the lower bound. Only six running sums are needed, so the state of
an arm is O(1) and an update is exact whatever the batching. It needs no assumption on the
rewards beyond being in [0, 1], and adapts to their variance: it is much narrower for
rewards near 0.9 than near 0.5.

Why not a library: ``confseq`` (Howard, Waudby-Smith, Ramdas) implements these bounds but
is a C++ extension that needs Boost to build, is marked early-stage, and computes over the
whole history rather than from a running state that a guardrail can store in a JSON column.
The arithmetic here is a few lines; ``tests/policies/test_confidence.py`` checks its
coverage by simulation.

Everything works on arrays with a leading "stream" axis so the simulation benchmark
(``bench/guardrails.py``) runs thousands of experiments through the very code the live
guardrails run for one arm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies._checks import check_finite_float

#: The bets' largest value (the paper's c = 1/2): smaller bets, smaller worst-case loss.
MAX_BET = 0.5
#: The level the bets are tuned for (any fixed value keeps the CS valid at every level;
#: this one makes it tight around the levels the guardrails use).
TUNING_ALPHA = 0.001

_FIELDS = ("count", "sum", "sum_sq_dev", "sum_bet", "sum_bet_x", "sum_penalty")


@dataclass
class MeanSequence:
    """Running sums of the CS, one entry per stream (arrays of equal shape ``(S,)``).

    Attributes
    ----------
    count : rewards seen ``t``.
    sum : ``Σ x_i``.
    sum_sq_dev : ``Σ (x_i − μ̂_i)²`` (the variance estimate's numerator).
    sum_bet : ``Σ λ_i``.
    sum_bet_x : ``Σ λ_i x_i``.
    sum_penalty : ``Σ v_i ψ(λ_i)``.
    """

    count: np.ndarray
    sum: np.ndarray
    sum_sq_dev: np.ndarray
    sum_bet: np.ndarray
    sum_bet_x: np.ndarray
    sum_penalty: np.ndarray

    @staticmethod
    def field_names() -> tuple[str, ...]:
        """The running sums, in constructor order."""
        return _FIELDS

    @classmethod
    def empty(cls, streams: int = 1) -> MeanSequence:
        """Fresh sequences for ``streams`` independent streams."""
        return cls(*(np.zeros(streams) for _ in _FIELDS))

    def as_dict(self) -> dict[str, float]:
        """A one-stream state as plain JSON numbers."""
        if self.count.size != 1:
            raise ValueError("as_dict: only a one-stream sequence is stored")
        return {name: float(getattr(self, name)[0]) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MeanSequence:
        """Load a one-stream state; ``None`` or ``{}`` is a fresh one. Errors name the field."""
        if not data:
            return cls.empty()
        values = {name: check_finite_float(name, data.get(name), low=0.0) for name in _FIELDS}
        if values["sum"] > values["count"] or values["sum_bet_x"] > values["sum_bet"] + 1e-9:
            raise ValueError("sum: must be at most count (rewards are in [0, 1])")
        return cls(*(np.array([values[name]]) for name in _FIELDS))

    def mean(self) -> np.ndarray:
        """The plain mean per stream (NaN where no rewards)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum / np.maximum(self.count, 1), np.nan)

    def bounds(self, alpha: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One-sided bounds, each valid at level ``alpha`` at all times: ``(lower, upper)``.

        Each of the two is wrong at *any* time with probability at most ``alpha``; both
        together at most ``2 alpha``. With no rewards yet the bounds are [0, 1].
        """
        radius_numerator = np.log(1.0 / np.asarray(alpha, dtype=float)) + self.sum_penalty
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = self.sum_bet_x / self.sum_bet
            radius = radius_numerator / self.sum_bet
        seen = self.sum_bet > 0
        lower = np.where(seen, np.clip(centre - radius, 0.0, 1.0), 0.0)
        upper = np.where(seen, np.clip(centre + radius, 0.0, 1.0), 1.0)
        return lower, upper


def sequence_update(sequence: MeanSequence, rewards: np.ndarray) -> MeanSequence:
    """The sequence after ``rewards`` of shape ``(S, b)`` (b new rewards per stream, in order).

    Exact for any batching: the bets of reward ``t`` use only rewards before it, computed
    with in-order cumulative sums. Rewards must be in [0, 1] (the caller checks).
    """
    x = np.asarray(rewards, dtype=float)
    if x.ndim != 2 or x.shape[0] != sequence.count.size:
        raise ValueError("rewards: must have shape (streams, batch)")
    if x.shape[1] == 0:
        return sequence
    t = sequence.count[:, None] + np.arange(1, x.shape[1] + 1)[None, :]
    sums = _running(sequence.sum, x)
    mean_after = (0.5 + sums) / (t + 1.0)  # μ̂_t, including x_t
    mean_before = _shifted((0.5 + sequence.sum) / (sequence.count + 1.0), mean_after)
    sq_dev = _running(sequence.sum_sq_dev, (x - mean_after) ** 2)
    variance_before = _shifted((0.25 + sequence.sum_sq_dev) / (sequence.count + 1.0), (0.25 + sq_dev) / (t + 1.0))
    bets = np.minimum(np.sqrt(2.0 * math.log(2.0 / TUNING_ALPHA) / (variance_before * t * np.log1p(t))), MAX_BET)
    penalties = (x - mean_before) ** 2 * (-np.log1p(-bets) - bets)  # v ψ(λ) = 4 (x − μ̂)² (−log(1−λ) − λ) / 4
    return MeanSequence(
        count=sequence.count + x.shape[1],
        sum=sums[:, -1],
        sum_sq_dev=sq_dev[:, -1],
        sum_bet=_running(sequence.sum_bet, bets)[:, -1],
        sum_bet_x=_running(sequence.sum_bet_x, bets * x)[:, -1],
        sum_penalty=_running(sequence.sum_penalty, penalties)[:, -1],
    )


def _running(initial: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``initial + values[:, :k+1].sum()`` for every k, added left to right, so that any
    split of a stream into batches gives bit-for-bit the same totals."""
    return np.cumsum(np.concatenate([initial[:, None], values], axis=1), axis=1)[:, 1:]


def _shifted(first: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` moved one step later, with ``first`` in front: the value before each reward."""
    return np.concatenate([first[:, None], values[:, :-1]], axis=1)
