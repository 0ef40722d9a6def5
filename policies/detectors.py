"""Rollback detectors: pure functions over per-arm statistics.

Each returns, per arm, a :class:`Detection` — whether the rule fires, *the numbers that
justify it* and a sentence a person can read — so the audit trail shows exactly why a model
was rolled back. They know nothing about experiments or databases; the caller keeps their
running state and decides what to do when a rule fires.

The default rules, for rewards in [0, 1]:

- :func:`floor_rule` — the hard floor: an arm's recent mean collapsed (≤ 0.01);
- :func:`relative_rule` — anytime-valid: the arm is worse than the best alternative with
  confidence sequences (:mod:`policies.confidence`) that stay valid however often they are
  checked; at most ``alpha`` probability of a false rollback per experiment, ever;
- :func:`change_rule` — the arm's mean dropped against its own history
  (:mod:`policies.change`, a Bernoulli GLR test; at most 0.5 % of stationary arms alarm
  within 20,000 rewards);
- :func:`shortfall_rule` — the same test with the other active arms' rewards over the same
  period added to the reference: the arm's recent rewards fall short of its own earlier ones
  and of what the other arms earned meanwhile (fast on a model that breaks early, and on a
  model that is worse than the others from the start).

The first release's rules (a normal-approximation relative rule and Page–Hinkley) are in
:mod:`policies.legacy_detectors`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int
from policies.change import MIN_REFERENCE, THRESHOLD, ChangeResult, ChangeState, change_update
from policies.confidence import MeanSequence


@dataclass(frozen=True)
class Detection:
    """The outcome of one rule on one arm.

    Attributes
    ----------
    arm : int
        Arm index.
    rule : str
        ``"floor"``, ``"relative"``, ``"change"``, ``"shortfall"``, ``"normal_relative"`` or
        ``"page_hinkley"``.
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
        by = f" by more than {evidence['margin']:g}" if evidence.get("margin") else ""
        if evidence.get("best_lower") is None:
            return f"not compared ({evidence.get('count', 0):,} rewards; no alternative to compare with)"
        return (
            f"mean reward {evidence['mean']:.2f} (at most {evidence['upper']:.2f}) vs at least "
            f"{evidence['best_lower']:.2f} for {name(evidence.get('best_arm'))}, over {evidence['count']:,} rewards "
            f"(worse{by} with {100 * (1 - evidence['alpha']):g}% confidence, valid however often it is checked)"
        )
    if detection.rule == "change":
        if evidence.get("recent_count") in (None, 0):
            return f"no drop detected in {evidence.get('count', 0):,} rewards"
        return (
            f"mean reward fell from {evidence['reference_mean']:.2f} over {evidence['reference_count']:,} earlier "
            f"rewards to {evidence['recent_mean']:.2f} over its last {evidence['recent_count']:,} "
            f"(change evidence {evidence['statistic']:.1f}, threshold {evidence['threshold']:g})"
        )
    if detection.rule == "shortfall":
        if evidence.get("recent_count") in (None, 0):
            return f"no shortfall detected in {evidence.get('count', 0):,} rewards"
        return (
            f"mean reward {evidence['recent_mean']:.2f} over its last {evidence['recent_count']:,} rewards vs "
            f"{evidence['reference_mean']:.2f} over its {evidence['reference_count']:,} earlier rewards and the other "
            f"models' {evidence['others_count']:,} over the same period (shortfall evidence "
            f"{evidence['statistic']:.1f}, threshold {evidence['threshold']:g})"
        )
    if detection.rule == "normal_relative":
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


def as_float_array(name: str, values: Any, n: int | None = None) -> np.ndarray:
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
    counts_arr = as_float_array("counts", counts)
    means_arr = as_float_array("means", means, counts_arr.size)
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


def relative_bounds_fired(
    lower: np.ndarray, upper: np.ndarray, counts: np.ndarray, active: np.ndarray, *, margin: float, min_samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The relative rule on arrays of shape ``(E, K)`` (E experiments of K arms).

    An arm fires when its upper bound plus ``margin`` is below the best *other* eligible
    arm's lower bound. Returns ``(fired, best_other, best_other_lower)``, each ``(E, K)``
    (``best_other`` is -1 where no other arm is eligible).
    """
    eligible = active & (counts >= min_samples)
    scores = np.where(eligible, lower, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    first, second = order[:, :1], order[:, 1:2] if scores.shape[1] > 1 else order[:, :1]
    arms = np.arange(scores.shape[1])[None, :]
    best_other = np.where(arms == first, second, first)
    best_other_lower = np.take_along_axis(scores, best_other, axis=1)
    has_other = np.isfinite(best_other_lower) & (best_other != arms)
    fired = eligible & has_other & (upper + margin < best_other_lower)
    return fired, np.where(has_other, best_other, -1), np.where(has_other, best_other_lower, np.nan)


def relative_rule(
    sequences: MeanSequence,
    active: Any | None = None,
    *,
    alpha: float = 0.005,
    margin: float = 0.0,
    min_samples: int = 50,
) -> list[Detection]:
    """Anytime-valid relative rule: fire when an arm is confidently worse than another.

    Every arm has a confidence sequence for its mean (:mod:`policies.confidence`), each
    one-sided bound at level ``alpha / (2 K)`` for K arms. Arm k fires when
    ``upper_k + margin < lower_j`` for the best other active arm j. If all arms have the
    same mean, a false rollback needs one of the 2K bounds to be wrong at some time, so
    the probability that this rule *ever* rolls back an arm of the experiment — checked
    after every batch, for as long as it runs — is at most ``alpha``.

    Parameters
    ----------
    sequences : MeanSequence
        One stream per arm (K streams), over the same period (reset together).
    active : array-like of bool, optional
        Arms eligible to be compared (default: all).
    alpha : float, default 0.005
        Bound on the probability of a false rollback over the whole run, per experiment.
    margin : float, default 0.0
        Tolerated shortfall against the best other arm, in reward units.
    min_samples : int, default 50
        Rewards an arm needs before it is compared (either side).

    Returns
    -------
    list of Detection
        One per arm; evidence: ``count``, ``mean``, ``upper``, ``best_arm``,
        ``best_lower``, ``alpha``, ``bound_alpha``, ``margin``, ``min_samples``.
    """
    n_arms = sequences.count.size
    active_arr = np.ones(n_arms, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    alpha = check_finite_float("alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    margin = check_finite_float("margin", margin, low=0.0)
    min_samples = check_int("min_samples", min_samples, minimum=1)
    bound_alpha = alpha / (2 * n_arms)
    lower, upper = sequences.bounds(bound_alpha)
    fired, best, best_lower = relative_bounds_fired(
        lower[None, :],
        upper[None, :],
        sequences.count[None, :],
        active_arr[None, :],
        margin=margin,
        min_samples=min_samples,
    )
    means = sequences.mean()
    detections = []
    for arm in range(n_arms):
        compared = bool(best[0, arm] >= 0 and active_arr[arm] and sequences.count[arm] >= min_samples)
        evidence: dict[str, Any] = {
            "count": int(sequences.count[arm]),
            "mean": float(means[arm]) if sequences.count[arm] > 0 else None,
            "upper": float(upper[arm]),
            "best_arm": int(best[0, arm]) if compared else None,
            "best_lower": float(best_lower[0, arm]) if compared else None,
            "alpha": alpha,
            "bound_alpha": bound_alpha,
            "margin": margin,
            "min_samples": min_samples,
        }
        detections.append(Detection(arm, "relative", bool(fired[0, arm]), evidence))
    return detections


def change_rule(
    state: ChangeState, rewards: Any, *, arm: int = 0, threshold: float = THRESHOLD, min_reference: int = MIN_REFERENCE
) -> tuple[ChangeState, Detection]:
    """Feed one arm's new rewards (in order) to its change detector (:mod:`policies.change`).

    Returns the new state (reset it to a fresh one after acting on an alarm) and a
    detection; evidence: ``count``, ``statistic`` (the largest seen in this batch),
    ``threshold``, ``reference_mean``, ``reference_count``, ``recent_mean``,
    ``recent_count``, ``alarm_at`` (1-based reward count of the first alarm, or None).
    """
    if state.others is not None:
        raise ValueError("state: a shortfall state; use shortfall_rule")
    x, threshold, min_reference = _change_inputs(rewards, threshold, min_reference)
    state, result = change_update(state, x[None, :], threshold=threshold, min_reference=min_reference)
    return state, Detection(arm, "change", bool(result.alarm_at[0]), _change_evidence(state, result, threshold))


def shortfall_rule(
    state: ChangeState,
    rewards: Any,
    others: tuple[float, float],
    *,
    arm: int = 0,
    threshold: float = THRESHOLD,
    min_reference: int = MIN_REFERENCE,
) -> tuple[ChangeState, Detection]:
    """Feed one arm's new rewards (in order) and the other active arms' rewards of the same
    batch, ``others = (count, sum)``, to its shortfall detector (the change detector whose
    reference also holds the other arms' rewards since each candidate change point;
    :mod:`policies.change`). ``state`` comes from ``ChangeState.empty(window=SHORTFALL_WINDOW,
    alternatives=True)``. Evidence as :func:`change_rule`'s plus ``others_count`` (the other
    arms' rewards pooled into the reference at the strongest change point).
    """
    if state.others is None:
        raise ValueError("state: a change state; use change_rule")
    x, threshold, min_reference = _change_inputs(rewards, threshold, min_reference)
    others_count = check_int("others.count", others[0], minimum=0)
    others_sum = check_finite_float("others.sum", others[1], low=0.0, high=others_count)
    state, result = change_update(
        state,
        x[None, :],
        others=(np.array([others_count], dtype=float), np.array([others_sum])),
        threshold=threshold,
        min_reference=min_reference,
    )
    evidence = {**_change_evidence(state, result, threshold), "others_count": int(result.others_count[0])}
    return state, Detection(arm, "shortfall", bool(result.alarm_at[0]), evidence)


def others_of(counts: Any, sums: Any) -> tuple[np.ndarray, np.ndarray]:
    """For each arm, the other arms' count and sum of one batch (what :func:`shortfall_rule`
    takes), from every arm's own; the sums are clipped to [0, count] against rounding."""
    counts_arr = as_float_array("counts", counts)
    sums_arr = as_float_array("sums", sums, counts_arr.size)
    others_count = counts_arr.sum() - counts_arr
    return others_count, np.clip(sums_arr.sum() - sums_arr, 0.0, others_count)


def _change_inputs(rewards: Any, threshold: float, min_reference: int) -> tuple[np.ndarray, float, int]:
    x = as_float_array("rewards", rewards)
    if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
        raise ValueError("rewards: must be finite and within [0, 1]")
    threshold = check_finite_float("threshold", threshold, low=0.0, low_inclusive=False)
    return x, threshold, check_int("min_reference", min_reference, minimum=1)


def _change_evidence(state: ChangeState, result: ChangeResult, threshold: float) -> dict[str, Any]:
    seen = bool(result.recent_count[0] > 0)
    return {
        "count": int(state.count[0]),
        "statistic": float(result.statistic[0]),
        "threshold": threshold,
        "reference_mean": float(result.reference_mean[0]) if seen else None,
        "reference_count": int(result.reference_count[0]) if seen else None,
        "recent_mean": float(result.recent_mean[0]) if seen else None,
        "recent_count": int(result.recent_count[0]),
        "alarm_at": int(result.alarm_at[0]) or None,
    }


@dataclass(frozen=True)
class ProvenBest:
    """An arm better than every other active arm, with anytime-valid confidence."""

    arm: int
    lower: float
    runner_up: int
    runner_up_upper: float
    bound_alpha: float

    def sentence(self, labels: Mapping[int, str] | None = None, alpha: float | None = None) -> str:
        names = labels or {}
        confidence = f" with {100 * (1 - alpha):g}% confidence" if alpha else ""
        return (
            f"{names.get(self.arm, f'arm #{self.arm}')} is better than every other active arm{confidence}, valid "
            f"however often it is checked: its mean is at least {self.lower:.3f}, the next best's "
            f"({names.get(self.runner_up, f'arm #{self.runner_up}')}) at most {self.runner_up_upper:.3f}"
        )


def proven_best(sequences: MeanSequence, active: Any, *, alpha: float, min_samples: int = 1) -> ProvenBest | None:
    """The best active arm if its lower bound is above every other active arm's upper bound.

    Bounds are one-sided at ``alpha / (2 K)`` each (K arms), so the chance of ever naming an
    arm that is not the best — with equal arms, of naming any — is at most ``alpha``. The A/B
    strategy's commit and the dashboard's "promote" suggestion both use this test.
    """
    active_arr = np.asarray(active, dtype=bool) & (sequences.count >= min_samples)
    if active_arr.sum() < 2:
        return None
    bound_alpha = alpha / (2 * sequences.count.size)
    lower, upper = sequences.bounds(bound_alpha)
    means = np.where(active_arr, np.nan_to_num(sequences.mean(), nan=-np.inf), -np.inf)
    best = int(np.argmax(means))
    others = active_arr.copy()
    others[best] = False
    runner_up = int(np.argmax(np.where(others, upper, -np.inf)))
    if lower[best] <= upper[runner_up]:
        return None
    return ProvenBest(best, float(lower[best]), runner_up, float(upper[runner_up]), bound_alpha)
