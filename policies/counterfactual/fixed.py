"""Fixed targets: IPS, self-normalised IPS and doubly robust estimates (see the package docs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int
from policies.counterfactual.log import MIN_ESS, Estimate, Log, normal_interval, unsupported_reason, z_value


def fixed_target_estimates(
    log: Log,
    target: Any,
    *,
    name: str = "target",
    confidence: float = 0.95,
    folds: int | Any = 2,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of a fixed allocation ``target`` over the arms.

    Parameters
    ----------
    log : Log
    target : array-like of shape (n_arms,)
        The allocation to evaluate (non-negative, sums to 1).
    name : str
        Label of the target in the results.
    confidence : float, default 0.95
    folds : int or array-like, default 2
        Cross-fitting folds of the DR reward model (per-arm means from the other folds):
        a number of folds assigned at random, or the fold of every rewarded decision.
    bootstrap : int, default 0
        If positive, intervals are percentile intervals over this many bootstrap resamples
        of the decisions instead of the normal approximation.
    seed : int, default 0
        Fold assignment and bootstrap.

    Returns
    -------
    dict
        ``{"ips": Estimate, "snips": Estimate, "dr": Estimate}``.
    """
    pi = np.asarray(target, dtype=float)
    if pi.shape != (log.n_arms,) or not np.isfinite(pi).all() or pi.min() < 0 or abs(pi.sum() - 1.0) > 1e-9:
        raise ValueError(f"target: must be {log.n_arms} non-negative shares summing to 1")
    confidence = check_finite_float("confidence", confidence, low=0.5, high=1.0, high_inclusive=False)
    bootstrap = check_int("bootstrap", bootstrap, minimum=0)
    keep = log.rewarded
    arms, p, r = log.arms[keep], log.propensities[keep], log.rewards[keep]
    missing = int((~keep).sum())
    blocked = unsupported_reason(pi, log) if arms.size else "cannot be evaluated: no rewarded decisions"
    if blocked:
        return {m: _empty(name, m, int(arms.size), blocked) for m in ("ips", "snips", "dr")}
    rng = np.random.default_rng(seed)
    weights = pi[arms] / p
    fold, n_folds = _folds(folds, arms.size, rng)
    q_own = _cross_fitted_means(arms, r, fold, n_folds, log.n_arms)  # (n, K): the model for each decision
    terms = {
        "ips": weights * r,
        "dr": q_own @ pi + weights * (r - q_own[np.arange(arms.size), arms]),
    }
    z = z_value(confidence)
    ess = float(weights.sum() ** 2 / (weights**2).sum())
    results = {}
    for method in ("ips", "snips", "dr"):
        if method == "snips":
            value = float((weights * r).sum() / weights.sum())
            # Delta method: the ratio's terms are w (r − V) / mean(w).
            ratio_terms = value + weights * (r - value) / weights.mean()
            _, lower, upper = normal_interval(ratio_terms, z)
            differences = ratio_terms - r
        else:
            value, lower, upper = normal_interval(terms[method], z)
            differences = terms[method] - r
        difference, difference_lower, difference_upper = normal_interval(differences, z)
        if bootstrap:
            lower, upper, difference_lower, difference_upper = _bootstrap(
                method, weights, r, terms, bootstrap, confidence, rng
            )
        warning = None if ess >= MIN_ESS else f"effective sample size {ess:.0f} is below {MIN_ESS:.0f}: unreliable"
        results[method] = Estimate(
            target=name,
            method=method,
            value=value,
            lower=lower,
            upper=upper,
            difference=difference,
            difference_lower=difference_lower,
            difference_upper=difference_upper,
            support=ess,
            decisions=int(arms.size),
            warning=warning,
            details={"missing_rewards": missing, "confidence": confidence},
        )
    return results


def _folds(folds: Any, size: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        count = check_int("folds", folds, minimum=2)
        return rng.integers(0, count, size), count
    given = np.asarray(folds)
    if given.shape != (size,) or given.dtype.kind not in "iu" or (given.size and given.min() < 0):
        raise ValueError("folds: a number, or one non-negative integer fold per rewarded decision")
    return given.astype(np.int64), int(given.max()) + 1 if given.size else 2


def _empty(name: str, method: str, decisions: int, warning: str) -> Estimate:
    return Estimate(name, method, None, None, None, None, None, None, 0.0, decisions, warning)


def _cross_fitted_means(arms: np.ndarray, rewards: np.ndarray, fold: np.ndarray, folds: int, n_arms: int) -> np.ndarray:
    """For each decision, every arm's mean reward estimated from the *other* folds."""
    sums = np.zeros((folds, n_arms))
    counts = np.zeros((folds, n_arms))
    np.add.at(sums, (fold, arms), rewards)
    np.add.at(counts, (fold, arms), 1.0)
    other_sums = sums.sum(axis=0)[None, :] - sums
    other_counts = counts.sum(axis=0)[None, :] - counts
    overall = other_sums.sum(axis=1, keepdims=True) / np.maximum(other_counts.sum(axis=1, keepdims=True), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(other_counts > 0, other_sums / other_counts, overall)
    return np.asarray(means[fold])


def _bootstrap(
    method: str,
    weights: np.ndarray,
    rewards: np.ndarray,
    terms: dict[str, np.ndarray],
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float, float, float, float]:
    """Percentile intervals of the estimate and of its difference to what was earned."""
    n = rewards.size
    values = np.empty(resamples)
    differences = np.empty(resamples)
    for b in range(resamples):
        index = rng.integers(0, n, n)
        if method == "snips":
            values[b] = (weights[index] * rewards[index]).sum() / weights[index].sum()
        else:
            values[b] = terms[method][index].mean()
        differences[b] = values[b] - rewards[index].mean()
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    d_low, d_high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high), float(d_low), float(d_high)
