"""Closing the loop: off-policy estimates checked against the exact counterfactual.

Supervised data turned into bandit feedback knows every model's reward on every request
(was its prediction right?) — the setting of Dudík, Langford & Li (2011). So a study can
log one strategy's traffic, estimate every alternative from that log alone, and compare
each estimate with the truth:

- "always model k": the truth is model k's accuracy over the same requests, exactly;
- a strategy: the truth is the strategy run on-policy. A replay evaluates a strategy over
  the decisions it accepted (about ``c`` per logged request, ``c`` the smallest propensity),
  so the matched truth is the strategy run on-policy over a random subsample of that size,
  in order (averaged over a few runs); the full-horizon on-policy result is shown beside it.

Per request, the logging strategy draws from its allocation and learns every ``batch``
requests, like the live learner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import policies
from policies.counterfactual import Log, fixed_target_estimates, replay_estimate
from replay.streams import MODEL_NAMES

#: Requests between policy updates, for the logging strategy and the on-policy runs.
BATCH = 100


@dataclass(frozen=True)
class Check:
    """One alternative on one seed: the estimate, its interval and the truth."""

    target: str
    method: str
    estimate: float | None
    lower: float | None
    upper: float | None
    truth: float
    full_horizon: float | None = None

    @property
    def covered(self) -> bool:
        return self.lower is not None and self.upper is not None and self.lower <= self.truth <= self.upper


def on_policy(
    kind: str, params: Mapping[str, Any] | None, correct: np.ndarray, seed: int, rows: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Run strategy ``kind`` over the requests (``rows`` of them, in order, if given).

    Returns its mean reward and, per request, the arm served, its propensity and the reward.
    """
    rng = np.random.default_rng(seed)
    policy = policies.make_policy(kind, correct.shape[0], params, seed=seed)
    columns = np.arange(correct.shape[1]) if rows is None else rows
    arms = np.empty(columns.size, dtype=np.int64)
    propensities = np.empty(columns.size)
    for start in range(0, columns.size, BATCH):
        allocation = policy.allocation()
        stop = min(start + BATCH, columns.size)
        chosen = rng.choice(allocation.size, size=stop - start, p=allocation)
        arms[start:stop] = chosen
        propensities[start:stop] = allocation[chosen]
        policy.update(chosen, correct[chosen, columns[start:stop]].astype(float))
    rewards = correct[arms, columns].astype(float)
    return float(rewards.mean()), arms, propensities, rewards


def check_seed(
    correct: np.ndarray,
    logger: tuple[str, Mapping[str, Any] | None],
    strategies: Mapping[str, tuple[str, Mapping[str, Any] | None]],
    seed: int,
    truth_runs: int = 3,
) -> list[Check]:
    """Log ``logger``'s traffic on one seed's requests, estimate every alternative from it,
    and compare with the exact or on-policy truth."""
    _, arms, propensities, rewards = on_policy(logger[0], logger[1], correct, seed)
    log = Log.of(arms, propensities, rewards, correct.shape[0])
    checks = []
    for k in range(correct.shape[0]):
        estimates = fixed_target_estimates(log, np.eye(correct.shape[0])[k], name=f"always {k}", seed=seed)
        for method, e in estimates.items():
            target = f"always {MODEL_NAMES[k]}" if k < len(MODEL_NAMES) else f"always model {k}"
            checks.append(Check(target, method, e.value, e.lower, e.upper, float(correct[k].mean())))
    rng = np.random.default_rng(seed + 10_000)
    for name, (kind, params) in strategies.items():
        e = replay_estimate(log, kind, params, name=name, replays=3, seed=seed)
        full, *_ = on_policy(kind, params, correct, seed)
        size = max(1, round(e.support))
        matched = [
            on_policy(
                kind, params, correct, seed + 100 + run, np.sort(rng.choice(correct.shape[1], size, replace=False))
            )[0]
            for run in range(truth_runs)
        ]
        checks.append(Check(name, "replay", e.value, e.lower, e.upper, float(np.mean(matched)), full))
    return checks


def coverage_table(checks_by_seed: list[list[Check]]) -> list[dict[str, Any]]:
    """Per alternative and method: mean estimate, mean truth, share of seeds covered."""
    table = []
    for index, first in enumerate(checks_by_seed[0]):
        rows = [seed_checks[index] for seed_checks in checks_by_seed]
        estimates = [c.estimate for c in rows if c.estimate is not None]
        table.append(
            {
                "target": first.target,
                "method": first.method,
                "estimate": float(np.mean(estimates)) if estimates else None,
                "truth": float(np.mean([c.truth for c in rows])),
                "full_horizon": float(np.mean([c.full_horizon for c in rows]))
                if first.full_horizon is not None
                else None,
                "covered": sum(c.covered for c in rows) / len(rows),
                "seeds": len(rows),
            }
        )
    return table
