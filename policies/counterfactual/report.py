"""The counterfactual report: every alternative evaluated on one log, and one sentence."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from policies.counterfactual.adaptive import replay_estimate
from policies.counterfactual.fixed import fixed_target_estimates
from policies.counterfactual.log import Estimate, Log, finite_or_none, z_value

Progress = Callable[[float, str], None]


def counterfactual_report(
    log: Log,
    *,
    labels: Sequence[str],
    strategies: Mapping[str, tuple[str, Mapping[str, Any] | None]],
    current_allocation: Any | None = None,
    confidence: float = 0.95,
    replays: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate every fixed alternative and every strategy on ``log``.

    Parameters
    ----------
    log : Log
    labels : sequence of str
        A name per arm (the model versions).
    strategies : mapping
        Row name → (strategy kind, parameters), each replayed (:func:`replay_estimate`).
    current_allocation : array-like, optional
        The policy's split now, evaluated frozen (a fixed target).
    confidence, replays, seed
        As in the estimators.
    progress : callable, optional
        Called with (fraction done, what is being done) as the work advances.

    Returns
    -------
    dict
        ``decisions``, ``rewarded``, ``missing_rewards``, ``actual`` (mean reward earned, with
        its interval), ``fixed`` (a row per fixed target: ``target``, ``kind``, and its IPS,
        SNIPS and DR estimates), ``strategies`` (a replay estimate per strategy),
        ``sentence`` and ``confidence``.
    """
    if len(labels) != log.n_arms:
        raise ValueError(f"labels: need one per arm ({log.n_arms})")
    report_progress = progress or (lambda fraction, what: None)
    targets: list[tuple[str, str, np.ndarray]] = [
        (f"always {label}", "always", np.eye(log.n_arms)[k]) for k, label in enumerate(labels)
    ]
    targets.append(("uniform split", "uniform", np.full(log.n_arms, 1.0 / log.n_arms)))
    if current_allocation is not None:
        targets.append(("current split, frozen", "frozen", np.asarray(current_allocation, dtype=float)))
    steps = len(targets) + len(strategies)
    fixed = []
    for done, (name, kind, target) in enumerate(targets):
        report_progress(done / steps, f"evaluating {name}")
        estimates = fixed_target_estimates(log, target, name=name, confidence=confidence, seed=seed)
        fixed.append({"target": name, "kind": kind, **{m: e.as_dict() for m, e in estimates.items()}})
    replayed = []
    for done, (name, (kind, params)) in enumerate(strategies.items(), start=len(targets)):
        report_progress(done / steps, f"replaying {name}")
        replayed.append(
            replay_estimate(log, kind, params, name=name, replays=replays, confidence=confidence, seed=seed).as_dict()
        )
    report_progress(1.0, "done")
    rewards = log.rewards[log.rewarded]
    actual = _actual(rewards, confidence)
    return {
        "decisions": int(log.arms.size),
        "rewarded": int(rewards.size),
        "missing_rewards": int(log.arms.size - rewards.size),
        "confidence": confidence,
        "actual": actual,
        "fixed": fixed,
        "strategies": replayed,
        "sentence": _sentence(fixed, replayed, actual, confidence),
    }


def _actual(rewards: np.ndarray, confidence: float) -> dict[str, float | None]:
    if rewards.size == 0:
        return {"mean": None, "lower": None, "upper": None}
    mean = float(rewards.mean())
    half = z_value(confidence) * float(rewards.std(ddof=1)) / math.sqrt(rewards.size) if rewards.size > 1 else math.inf
    return {"mean": mean, "lower": finite_or_none(mean - half), "upper": finite_or_none(mean + half)}


def _sentence(
    fixed: list[dict[str, Any]], replayed: list[dict[str, Any]], actual: dict[str, Any], confidence: float
) -> str:
    """The most convincingly better alternative against what was earned, in words."""
    if actual["mean"] is None:
        return "No rewarded decisions yet: nothing to compare."
    candidates = [row["dr"] for row in fixed if row["kind"] != "frozen"] + replayed
    usable = [
        e for e in candidates if e["value"] is not None and e["warning"] is None and e["difference_lower"] is not None
    ]
    if not usable:
        return "Not enough logged traffic to evaluate any alternative yet."
    # Ranked by the lower end of the difference: the most convincingly better alternative, not
    # the highest point estimate (which, among noisy replays, is mostly the noisiest one).
    best = max(usable, key=lambda e: e["difference_lower"])
    sign = "+" if best["difference"] >= 0 else "−"
    significant = best["difference_lower"] > 0 or best["difference_upper"] < 0
    verdict = "significant" if significant else "not significant"
    subject = (
        best["target"].replace("always ", "Always serving ", 1)
        if best["target"].startswith("always ")
        else (f"The {best['target']} strategy")
    )
    return (
        f"{subject} would have earned {sign}{abs(best['difference']):.3f} per decision "
        f"({100 * confidence:g} % CI {_signed(best['difference_lower'])} … {_signed(best['difference_upper'])}) "
        f"compared with what was earned ({actual['mean']:.3f}) — {verdict}."
    )


def _signed(value: float) -> str:
    return f"+{value:.3f}" if value >= 0 else f"−{abs(value):.3f}"


def estimate_rows(report: Mapping[str, Any]) -> list[Estimate]:
    """Every DR and replay estimate of a report, as objects (for charts and tables)."""
    rows = [Estimate(**row["dr"]) for row in report["fixed"]]
    rows += [Estimate(**row) for row in report["strategies"]]
    return rows
