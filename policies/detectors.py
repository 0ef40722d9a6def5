"""Rollback detectors: pure functions over per-arm statistics.

Each returns, per arm, a :class:`Detection` — whether the rule fires *and the numbers that
justify it* — so the audit trail can show exactly why a model was rolled back. They know
nothing about experiments or databases; the caller decides which statistics to pass (a
recent window, all data) and what to do when a rule fires.

Defaults are the project's choices for rewards in [0, 1]; scale ``floor``, ``margin``,
``delta`` and ``threshold`` with the reward range for other rewards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int


@dataclass(frozen=True)
class Detection:
    """The outcome of one rule on one arm.

    Attributes
    ----------
    arm : int
        Arm index.
    rule : str
        ``"floor"``, ``"relative"`` or ``"page_hinkley"``.
    fired : bool
        Whether the rule asks for a rollback.
    evidence : dict
        Plain numbers (floats, ints, bools) behind the outcome, including the thresholds.
    """

    arm: int
    rule: str
    fired: bool
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The detection as plain JSON types."""
        return asdict(self)

    def sentence(self, labels: Mapping[int, str] | None = None) -> str:
        """What the rule saw, in words (arms named by ``labels``, else "arm #k").

        Parameters
        ----------
        labels : mapping of int to str, optional
            Arm index → a name people know (the model version).

        Returns
        -------
        str
            One clause, e.g. "mean reward 0.69 vs 0.86 for census-tree over 1,586 rewards
            (P(worse by ≥ 0.05) = 0.999)".
        """
        return describe(self, labels or {})


def describe(detection: Detection, labels: Mapping[int, str]) -> str:
    """The sentence of :meth:`Detection.sentence`."""
    evidence = detection.evidence

    def name(arm: Any) -> str:
        return labels.get(arm, f"arm #{arm}") if isinstance(arm, int) else "?"

    if detection.rule == "floor":
        mean = evidence.get("window_mean")
        shown = "no data" if mean is None else f"{mean:.2f}"
        return (
            f"mean reward {shown} over its last {evidence.get('window_count', 0):,} rewards, at or below the "
            f"floor {evidence.get('floor')}"
        )
    if detection.rule == "relative":
        if evidence.get("best_mean") is None:
            return f"not compared (fewer than {evidence.get('min_samples')} rewards)"
        return (
            f"mean reward {evidence['mean']:.2f} vs {evidence['best_mean']:.2f} for {name(evidence.get('best_arm'))} "
            f"over {evidence['count']:,} rewards (P(worse by ≥ {evidence['margin']:g}) = "
            f"{evidence['probability_worse']:.3f})"
        )
    if detection.rule == "page_hinkley":
        if evidence.get("alarm_at") is None:
            return f"no change detected in {evidence.get('n', 0):,} rewards"
        return f"change detected at reward {evidence['alarm_at']:,} (running mean {evidence['running_mean']:.2f})"
    return f"{detection.rule} {'fired' if detection.fired else 'did not fire'}"


def _as_float_array(name: str, values: Any, n: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or (n is not None and array.size != n):
        raise ValueError(f"{name}: must be a one-dimensional array" + (f" of length {n}" if n else ""))
    return array


def floor_rule(counts: Any, means: Any, *, floor: float = 0.01, min_samples: int = 50) -> list[Detection]:
    """Absolute floor: fire when an arm's recent mean reward is at or below ``floor``.

    Meant for a recent window of rewards (the caller's choice). This is the hard floor
    that acts at once whatever the approval mode: a model whose reward collapsed.

    Parameters
    ----------
    counts : array-like of shape (n_arms,)
        Rewards per arm in the window.
    means : array-like of shape (n_arms,)
        Mean reward per arm in the window (any value where the count is 0).
    floor : float, default 0.01
        Fire when the window mean is ``<= floor``.
    min_samples : int, default 50
        Do not fire on fewer rewards than this.

    Returns
    -------
    list of Detection
        One per arm; evidence: ``window_count``, ``window_mean``, ``floor``,
        ``min_samples``.
    """
    counts_arr = _as_float_array("counts", counts)
    means_arr = _as_float_array("means", means, counts_arr.size)
    floor = check_finite_float("floor", floor)
    min_samples = check_int("min_samples", min_samples, minimum=1)
    detections = []
    for arm, (count, mean) in enumerate(zip(counts_arr, means_arr, strict=True)):
        has_data = count > 0 and math.isfinite(mean)
        evidence = {
            "window_count": int(count),
            "window_mean": float(mean) if has_data else None,
            "floor": floor,
            "min_samples": min_samples,
        }
        fired = bool(has_data and count >= min_samples and mean <= floor)
        detections.append(Detection(arm, "floor", fired, evidence))
    return detections


def relative_rule(
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
    counts_arr = _as_float_array("counts", counts)
    n_arms = counts_arr.size
    sums_arr = _as_float_array("sums", sums, n_arms)
    sumsq_arr = _as_float_array("sumsq", sumsq, n_arms)
    active_arr = np.ones(n_arms, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    margin = check_finite_float("margin", margin, low=0.0)
    confidence = check_finite_float(
        "confidence", confidence, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    min_samples = check_int("min_samples", min_samples, minimum=2)

    eligible = active_arr & (counts_arr >= min_samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts_arr > 0, sums_arr / counts_arr, np.nan)
        variances = np.maximum(sumsq_arr - counts_arr * means * means, 0.0) / (counts_arr - 1.0)
    best = int(np.argmax(np.where(eligible, means, -np.inf))) if eligible.any() else -1
    normal = NormalDist()
    detections = []
    for arm in range(n_arms):
        evidence: dict[str, Any] = {
            "count": int(counts_arr[arm]),
            "mean": float(means[arm]) if counts_arr[arm] > 0 else None,
            "best_arm": best,
            "margin": margin,
            "confidence": confidence,
            "min_samples": min_samples,
        }
        fired = False
        if best >= 0 and arm != best and eligible[arm]:
            difference = float(means[best] - means[arm])
            se = math.sqrt(variances[best] / counts_arr[best] + variances[arm] / counts_arr[arm])
            if se > 0:
                probability = normal.cdf((difference - margin) / se)
            else:
                probability = 1.0 if difference > margin else 0.0
            evidence.update(
                best_mean=float(means[best]),
                best_count=int(counts_arr[best]),
                difference=difference,
                standard_error=se,
                probability_worse=probability,
            )
            fired = probability >= confidence
        detections.append(Detection(arm, "relative", fired, evidence))
    return detections


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
    x = _as_float_array("rewards", rewards)
    if not np.isfinite(x).all():
        raise ValueError("rewards: must be finite (no NaN or infinity)")
    delta = check_finite_float("delta", delta, low=0.0)
    threshold = check_finite_float("threshold", threshold, low=0.0, low_inclusive=False)
    min_samples = check_int("min_samples", min_samples, minimum=1)

    alarm_at = None
    if x.size:
        counts = state.n + np.arange(1, x.size + 1)
        totals = np.cumsum(np.concatenate([[state.total], x]))[1:]
        increments = totals / counts - x - delta
        statistics = np.cumsum(np.concatenate([[state.statistic], increments]))[1:]
        minima = np.minimum.accumulate(np.concatenate([[state.minimum], statistics]))[1:]
        alarms = np.flatnonzero((statistics - minima > threshold) & (counts >= min_samples))
        if alarms.size:
            alarm_at = int(counts[alarms[0]])
        state = PageHinkleyState(
            n=int(counts[-1]), total=float(totals[-1]), statistic=float(statistics[-1]), minimum=float(minima[-1])
        )
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
