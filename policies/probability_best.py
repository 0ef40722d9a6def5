"""The probability that each Beta-distributed arm is the best, by numerical integration.

``P(arm k is best) = ∫ f_k(x) Π_{j≠k} F_j(x) dx`` for independent Beta posteriors. There is
no closed form beyond two arms, and the first release estimated it from a fixed set of
seeded Monte Carlo draws — so the same state always carried the *same* error (a fresh
five-arm experiment served 0.185–0.214 instead of 0.2) and an arm with a probability below
about 1 / 4096 got exactly 0. Quadrature removes both: the result is deterministic, the
same for every process and rebuild, and accurate to about 1e-4 (measured against 4 million
Monte Carlo draws in ``tests/policies/test_probability_best.py``).

Method: each density is evaluated, normalised with its Beta function, on the cell centres
of one grid over the region where the best arm can be — from the highest of the arms'
lower tails (below it some arm is almost surely higher) to the highest upper tail, each
tail 12 standard deviations out. Within a cell, the chance that another arm is lower is its
mass below the cell plus half its mass in the cell (ties split evenly); an arm's mass below
the grid comes from its exact total (1) minus its mass on and above the grid. The result is
renormalised to sum to one over the active arms.
"""

from __future__ import annotations

import math

import numpy as np

#: Grid cells; the error of the estimate shrinks with the square of the cell width.
CELLS = 4096
#: Tails cut at this many standard deviations.
TAIL_SDS = 12.0


def beta_probability_best(alpha: np.ndarray, beta: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``P(arm k has the highest mean)`` for independent Beta(α_k, β_k), over active arms.

    Returns zeros on inactive arms; the active entries sum to one.
    """
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    active = np.asarray(active, dtype=bool)
    arms = np.flatnonzero(active)
    result = np.zeros(alpha.size)
    if arms.size == 1:
        result[arms] = 1.0
        return result
    a, b = alpha[arms], beta[arms]
    mean = a / (a + b)
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    low = float(np.clip(np.max(mean - TAIL_SDS * sd), 0.0, 1.0))
    high = float(np.clip(np.max(mean + TAIL_SDS * sd), low, 1.0))
    if high - low < 1e-12:  # every posterior is a point mass at the same place
        result[arms] = 1.0 / arms.size
        return result
    width = (high - low) / CELLS
    centres = low + width * (np.arange(CELLS) + 0.5)
    log_norm = np.array([math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y) for x, y in zip(a, b, strict=True)])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pdf = (a[:, None] - 1) * np.log(centres)[None, :] + (b[:, None] - 1) * np.log1p(-centres)[None, :]
    mass = np.exp(log_pdf - log_norm[:, None]) * width  # (arms, cells)
    above = np.cumsum(mass[:, ::-1], axis=1)[:, ::-1] - mass  # mass in the cells above each cell
    below = np.clip(1.0 - above - mass, 0.0, 1.0)
    lower_than = below + 0.5 * mass  # P(X_j < x) for x in the cell, ties split
    probability = (mass * _product_of_others(lower_than)).sum(axis=1)
    probability = np.clip(probability, 0.0, None)
    result[arms] = probability / probability.sum() if probability.sum() > 0 else 1.0 / arms.size
    return result


def _product_of_others(values: np.ndarray) -> np.ndarray:
    """``Π_{j≠k} values[j]`` per row k, for values in [0, 1]: by logarithms, with zeros
    counted apart (a product with another row's zero is 0; one's own zero is left out)."""
    zero = values <= 0.0
    with np.errstate(divide="ignore"):
        logs = np.where(zero, 0.0, np.log(np.where(zero, 1.0, values)))
    total = logs.sum(axis=0, keepdims=True)
    zeros_elsewhere = zero.sum(axis=0, keepdims=True) - zero
    return np.asarray(np.where(zeros_elsewhere > 0, 0.0, np.exp(total - logs)))
