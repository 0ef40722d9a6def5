"""The first release's rollback rules, kept as opt-in guardrails and as the baseline the
simulation benchmark (``bench/guardrails.py``) measures the new rules against.

Both are valid for *one* look only: the normal-approximation relative rule, re-checked after
every learning batch, fires on equal arms in 5–11 % of experiments, and Page–Hinkley's
running-mean reference lets a good history hide a recent drop. The defaults are now the
anytime-valid :func:`policies.detectors.relative_rule` and the change detector of
:mod:`policies.change`; see ``docs/POLICIES.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int
from policies.detectors import Detection, as_float_array


def normal_relative_rule(
    counts: Any,
    sums: Any,
    sumsq: Any,
    active: Any | None = None,
    *,
    margin: float = 0.05,
    confidence: float = 0.95,
    min_samples: int = 100,
) -> list[Detection]:
    """Relative rule: fire when an arm is worse than the current best by more than ``margin``.

    The best arm is the active arm with the highest mean among those with at least
    ``min_samples`` rewards. For every other such arm, with a normal approximation of the
    difference of means (unequal variances),
    ``P(μ_best - μ_arm > margin) = Φ((mean_best - mean_arm - margin) / se)``; the rule
    fires when that probability is at least ``confidence``.

    When the true gap equals ``margin``, a single check fires with probability about
    ``1 - confidence``; when arms are equal it is far rarer. Because the best arm is
    selected as the maximum, its mean is slightly optimistic — one more reason the
    margin should be a difference that matters, not zero.

    Parameters
    ----------
    counts, sums, sumsq : array-like of shape (n_arms,)
        Per-arm number of rewards, sum and sum of squares.
    active : array-like of bool, optional
        Arms eligible to be compared (default: all).
    margin : float, default 0.05
        Tolerated shortfall δ against the best arm, in reward units.
    confidence : float, default 0.95
        Required probability of being worse by more than ``margin``.
    min_samples : int, default 100
        Minimum rewards of both arms before comparing.

    Returns
    -------
    list of Detection
        One per arm; evidence: ``count``, ``mean``, ``best_arm``, ``best_mean``,
        ``best_count``, ``difference``, ``standard_error``, ``probability_worse``,
        ``margin``, ``confidence``, ``min_samples``.
    """
    counts_arr = as_float_array("counts", counts)
    n_arms = counts_arr.size
    sums_arr = as_float_array("sums", sums, n_arms)
    sumsq_arr = as_float_array("sumsq", sumsq, n_arms)
    active_arr = np.ones(n_arms, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    margin = check_finite_float("margin", margin, low=0.0)
    confidence = check_finite_float(
        "confidence", confidence, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    min_samples = check_int("min_samples", min_samples, minimum=2)

    fired, best_arr, means, se, z = normal_relative_arrays(
        counts_arr[None, :],
        sums_arr[None, :],
        sumsq_arr[None, :],
        active_arr[None, :],
        margin=margin,
        confidence=confidence,
        min_samples=min_samples,
    )
    best = int(best_arr[0])
    detections = []
    for arm in range(n_arms):
        evidence: dict[str, Any] = {
            "count": int(counts_arr[arm]),
            "mean": float(means[0, arm]) if counts_arr[arm] > 0 else None,
            "best_arm": best,
            "margin": margin,
            "confidence": confidence,
            "min_samples": min_samples,
        }
        if not np.isnan(z[0, arm]):
            probability = NormalDist().cdf(z[0, arm]) if se[0, arm] > 0 else float(z[0, arm] > 0)
            evidence.update(
                best_mean=float(means[0, best]),
                best_count=int(counts_arr[best]),
                difference=float(means[0, best] - means[0, arm]),
                standard_error=float(se[0, arm]),
                probability_worse=probability,
            )
        detections.append(Detection(arm, "normal_relative", bool(fired[0, arm]), evidence))
    return detections


def normal_relative_arrays(
    counts: np.ndarray,
    sums: np.ndarray,
    sumsq: np.ndarray,
    active: np.ndarray,
    *,
    margin: float,
    confidence: float,
    min_samples: int,
) -> tuple[np.ndarray, ...]:
    """:func:`normal_relative_rule` on arrays of shape ``(E, K)``.

    Returns ``(fired, best, means, standard_error, z)``: ``best`` has shape ``(E,)`` (-1
    where no arm is eligible); ``z = (difference − margin) / se`` is NaN where the arm is
    not compared, ±inf where ``se`` is 0; the rule fires when ``Φ(z) ≥ confidence``.
    """
    eligible = active & (counts >= min_samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
        variances = np.maximum(sumsq - counts * means * means, 0.0) / (counts - 1.0)
    any_eligible = np.asarray(eligible.any(axis=1))
    best = np.where(any_eligible, np.argmax(np.where(eligible, means, -np.inf), axis=1), -1)
    safe_best = np.maximum(best, 0)[:, None]
    arms = np.arange(counts.shape[1])[None, :]
    compared = any_eligible[:, None] & eligible & (arms != safe_best)
    best_mean = np.take_along_axis(means, safe_best, axis=1)
    best_var = np.take_along_axis(variances, safe_best, axis=1) / np.take_along_axis(counts, safe_best, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(best_var + variances / counts)
        gap = best_mean - means - margin
        z = np.where(se > 0, gap / se, np.where(gap > 0, np.inf, -np.inf))
    z = np.where(compared, z, np.nan)
    fired = compared & np.greater_equal(z, NormalDist().inv_cdf(confidence))
    return fired, best, means, se, z


@dataclass(frozen=True)
class PageHinkleyState:
    """Running state of a Page–Hinkley test on one arm's reward stream.

    Attributes
    ----------
    n : int
        Rewards seen.
    total : float
        Their sum (so the running mean is ``total / n``).
    statistic : float
        ``m_n = Σ_t (x̄_t - x_t - δ)``, which grows when rewards fall below their mean.
    minimum : float
        ``min_t m_t`` so far.
    """

    n: int = 0
    total: float = 0.0
    statistic: float = 0.0
    minimum: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The state as plain JSON types."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PageHinkleyState:
        """Load a saved state; ``None`` or ``{}`` is a fresh one. Errors name the field."""
        if not data:
            return cls()
        n = check_int("n", data.get("n"), minimum=0)
        values = {key: check_finite_float(key, data.get(key)) for key in ("total", "statistic", "minimum")}
        return cls(n=n, **values)


def page_hinkley(
    rewards: Any,
    state: PageHinkleyState | None = None,
    *,
    arm: int = 0,
    delta: float = 0.02,
    threshold: float = 60.0,
    min_samples: int = 30,
) -> tuple[PageHinkleyState, Detection]:
    """Page–Hinkley test for a *decrease* in one arm's mean reward (Page, 1954).

    With ``x̄_t`` the running mean of the first ``t`` rewards,
    ``m_t = Σ_{s≤t} (x̄_s - x_s - δ)``; the test fires at the first ``t ≥ min_samples``
    where ``m_t - min_{s≤t} m_s > threshold``.

    The update is defined reward by reward and computed with in-order accumulations, so
    feeding a stream in any batches gives exactly the same state and alarm time.

    Parameters
    ----------
    rewards : array-like of float
        New rewards of the arm, in arrival order.
    state : PageHinkleyState, optional
        State after the previous rewards (fresh if omitted).
    arm : int, default 0
        Arm index, recorded in the detection.
    delta : float, default 0.02
        Magnitude of change ignored (a drift allowance, in reward units).
    threshold : float, default 60.0
        Alarm threshold λ. Documented false-alarm rate at the defaults: at most 1% of
        stationary Bernoulli(0.5) streams (the largest variance a [0, 1] reward can have)
        alarm within 10,000 rewards — measured 0.2% of 1,000 seeded streams, and checked
        in ``tests/policies/test_detectors.py``. Detection delay there: a drop from 0.6
        to 0.4 is flagged after a median of about 330 rewards, a collapse to 0.05 after
        about 110.
    min_samples : int, default 30
        No alarm before this many rewards, while the running mean is still noisy.

    Returns
    -------
    (PageHinkleyState, Detection)
        The new state (continue from it; reset to a fresh state after acting on an
        alarm) and the detection; evidence: ``n``, ``running_mean``, ``statistic``,
        ``minimum``, ``excursion``, ``alarm_at`` (the 1-based reward count at the first
        alarm in this batch, or None), ``delta``, ``threshold``, ``min_samples``.
    """
    state = state or PageHinkleyState()
    x = as_float_array("rewards", rewards)
    if not np.isfinite(x).all():
        raise ValueError("rewards: must be finite (no NaN or infinity)")
    delta = check_finite_float("delta", delta, low=0.0)
    threshold = check_finite_float("threshold", threshold, low=0.0, low_inclusive=False)
    min_samples = check_int("min_samples", min_samples, minimum=1)

    if x.size:
        arrays = page_hinkley_arrays(
            np.array([float(state.n)]),
            np.array([state.total]),
            np.array([state.statistic]),
            np.array([state.minimum]),
            x[None, :],
            delta=delta,
            threshold=threshold,
            min_samples=min_samples,
        )
        n, total, statistic, minimum, alarms = (float(a[0]) for a in arrays)
        state = PageHinkleyState(n=int(n), total=total, statistic=statistic, minimum=minimum)
        alarm_at = int(alarms) or None
    else:
        alarm_at = None
    excursion = state.statistic - state.minimum
    evidence = {
        "n": state.n,
        "running_mean": state.total / state.n if state.n else None,
        "statistic": state.statistic,
        "minimum": state.minimum,
        "excursion": excursion,
        "alarm_at": alarm_at,
        "delta": delta,
        "threshold": threshold,
        "min_samples": min_samples,
    }
    return state, Detection(arm, "page_hinkley", alarm_at is not None, evidence)


def page_hinkley_arrays(
    n: np.ndarray,
    total: np.ndarray,
    statistic: np.ndarray,
    minimum: np.ndarray,
    rewards: np.ndarray,
    *,
    delta: float,
    threshold: float,
    min_samples: int,
) -> tuple[np.ndarray, ...]:
    """:func:`page_hinkley` for S streams at once: states of shape ``(S,)``, rewards ``(S, b)``.

    Returns the new ``(n, total, statistic, minimum)`` and ``alarm_at`` (the 1-based reward
    count of each stream's first alarm in this batch, 0 for none).
    """
    counts = n[:, None] + np.arange(1, rewards.shape[1] + 1)[None, :]
    totals = np.cumsum(np.concatenate([total[:, None], rewards], axis=1), axis=1)[:, 1:]
    increments = totals / counts - rewards - delta
    statistics = np.cumsum(np.concatenate([statistic[:, None], increments], axis=1), axis=1)[:, 1:]
    minima = np.minimum.accumulate(np.concatenate([minimum[:, None], statistics], axis=1), axis=1)[:, 1:]
    alarms = (statistics - minima > threshold) & (counts >= min_samples)
    first = np.argmax(alarms, axis=1)
    alarm_at = np.where(alarms.any(axis=1), counts[np.arange(counts.shape[0]), first], 0)
    return counts[:, -1], totals[:, -1], statistics[:, -1], minima[:, -1], alarm_at


def welch_z_test(
    mean_a: float, var_a: float, n_a: float, mean_b: float, var_b: float, n_b: float
) -> tuple[float, float]:
    """Two-sided large-sample test of equal means with unequal variances (Welch's z) — the
    first release's A/B commit test (best vs runner-up, repeated every budget).

    Parameters
    ----------
    mean_a, var_a, n_a, mean_b, var_b, n_b : float
        Sample mean, unbiased sample variance and size of each group (sizes ≥ 2).

    Returns
    -------
    (z, p_value) : tuple of float
        ``z = (mean_a - mean_b) / sqrt(var_a/n_a + var_b/n_b)`` and its two-sided p-value
        under the standard normal. Two constant samples with different means give
        ``z = ±inf, p = 0``; with equal means ``z = 0, p = 1``.
    """
    se = math.sqrt(var_a / n_a + var_b / n_b)
    diff = mean_a - mean_b
    if se == 0.0:
        return (0.0, 1.0) if diff == 0.0 else (math.copysign(math.inf, diff), 0.0)
    z = diff / se
    return z, 2.0 * (1.0 - NormalDist().cdf(abs(z)))
