"""Paired comparisons of strategies over seeds: a difference is only as sure as its interval.

Every strategy runs on the same stream for a given seed, so the fair comparison of two
strategies is the mean over seeds of their per-seed difference, with a Student-t interval
of that mean — not two separate means with their own spreads, which hide how much of the
variation the streams share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t


@dataclass(frozen=True)
class Difference:
    """``first`` − ``second`` over paired seeds."""

    first: str
    second: str
    mean: float
    lower: float
    upper: float
    seeds: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.lower > 0 or self.upper < 0

    def text(self) -> str:
        mark = " *" if self.significant else ""
        return f"{_signed(self.mean)} ({_signed(self.lower)} … {_signed(self.upper)}){mark}"


def paired_difference(
    first: Sequence[float], second: Sequence[float], names: tuple[str, str] = ("a", "b"), confidence: float = 0.95
) -> Difference:
    """Mean of ``first[i] − second[i]`` with its two-sided Student-t interval.

    Raises
    ------
    ValueError
        When the sequences differ in length or hold fewer than two seeds (no interval).
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"first, second: need one value per seed each, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError("first: at least 2 paired seeds are needed for an interval")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    differences = a - b
    mean = float(differences.mean())
    half = float(student_t.ppf(0.5 + confidence / 2, a.size - 1)) * float(differences.std(ddof=1)) / math.sqrt(a.size)
    return Difference(names[0], names[1], mean, mean - half, mean + half, int(a.size))


def against_best(per_seed: Mapping[str, Sequence[float]], confidence: float = 0.95) -> list[Difference]:
    """Every strategy minus the one with the highest mean, in the order given."""
    best = max(per_seed, key=lambda name: float(np.mean(per_seed[name])))
    return [
        paired_difference(values, per_seed[best], (name, best), confidence)
        for name, values in per_seed.items()
        if name != best
    ]


def all_pairs(per_seed: Mapping[str, Sequence[float]], confidence: float = 0.95) -> list[Difference]:
    """Every pair (row − column for each row before its column, in the order given)."""
    names = list(per_seed)
    return [
        paired_difference(per_seed[a], per_seed[b], (a, b), confidence)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]


def _signed(value: float) -> str:
    return f"+{value:.4f}" if value >= 0 else f"−{abs(value):.4f}"
