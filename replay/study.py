"""The chunked replay of deployment strategies — the core of ``manage.py replay``.

Routing is **per chunk**: for each chunk of the stream a strategy picks one model (drawing
from its allocation), that model serves the whole chunk, the labels are revealed after the
chunk, and the strategy learns one reward — the chunk's accuracy (census) or cost-based
reward (fraud, see :func:`replay.streams.reward`). Every strategy of a seed sees the same
stream, the same trained models and so the same per-chunk rewards; they differ only in what
they choose.

Rollback: after each chunk the detectors of ``policies.detectors`` run on the chunk rewards
— a Page–Hinkley test on each model's stream of rewards (δ = 0.005, λ = 0.3, at least 5
chunks) and the relative rule (worse than the best by 0.02 with 95% confidence, at least 5
chunks each); a firing detector excludes that model, never the last one. The thresholds are
the project's choice for chunk-level rewards, whose spread is far smaller than a single
request's. By default they act for the three traditional strategies (naive, validation,
A/B), whose only other adaptation is none at all — the paper's "real-time rollback" of a
deployed model; bandits adapt by themselves (``rollback="all"`` or ``"none"`` change this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import policies
from policies.legacy_detectors import PageHinkleyState, page_hinkley
from policies.legacy_detectors import normal_relative_rule as relative_rule
from replay.streams import COST_FALSE_NEGATIVE, COST_FALSE_POSITIVE, MODEL_NAMES, Scored

TRADITIONAL = ("naive", "validation", "ab_test")
#: The paper's six, then the drift-aware variants (not in the paper).
STRATEGIES = (*policies.PAPER_POLICIES, "discounted_thompson", "sw_ucb")
#: Hyper-parameters for chunk-level replay (the platform's defaults are for live traffic).
REPLAY_PARAMS: dict[str, dict[str, Any]] = {
    "naive": {"arm": 0},
    "ab_test": {"budget": 10},
    "discounted_thompson": {"gamma": 0.9},
    "sw_ucb": {"window": 20},
}
PH: dict[str, Any] = {"delta": 0.005, "threshold": 0.3, "min_samples": 5}
RELATIVE: dict[str, Any] = {"margin": 0.02, "confidence": 0.95, "min_samples": 5}


@dataclass
class Run:
    """One strategy on one seed's stream."""

    strategy: str
    arms: np.ndarray  # model served on each chunk
    rewards: np.ndarray  # reward obtained on each chunk
    best: np.ndarray  # best model's reward on each chunk
    rollbacks: list[tuple[int, int, str]] = field(default_factory=list)  # (chunk, model, rule)

    @property
    def regret(self) -> float:
        return float(np.sum(self.best - self.rewards))

    @property
    def switches(self) -> int:
        return int(np.sum(self.arms[1:] != self.arms[:-1]))


def _policy(kind: str, scored: Scored, seed: int) -> policies.Policy:
    # The paper's strategies as published: no exploration floor (mabdash's live default
    # of 1 % per arm exists for off-policy evaluation, which the study does not need).
    params = {"min_share": 0.0, **REPLAY_PARAMS.get(kind, {})}
    if kind == "validation":
        params["scores"] = scored.validation.tolist()
    return policies.make_policy(kind, scored.rewards.shape[0], params, seed=seed)


def run_strategy(kind: str, scored: Scored, seed: int, rollback: bool) -> Run:
    """Replay one strategy over the chunks; deterministic for a seed."""
    policy = _policy(kind, scored, seed)
    rng = np.random.default_rng(seed)
    n_models, n_chunks = scored.rewards.shape
    arms = np.empty(n_chunks, dtype=np.int64)
    got = np.empty(n_chunks)
    detectors = {k: PageHinkleyState() for k in range(n_models)}
    run = Run(kind, arms, got, scored.rewards.max(axis=0))
    for c in range(n_chunks):
        arm = policy.choose(rng)
        arms[c], got[c] = arm, scored.rewards[arm, c]
        policy.update([arm], [got[c]])
        if rollback:
            _rollback(policy, detectors, arm, got[c], c, run)
    return run


def _rollback(
    policy: policies.Policy, detectors: dict[int, PageHinkleyState], arm: int, value: float, chunk: int, run: Run
) -> None:
    detectors[arm], change = page_hinkley([value], detectors[arm], arm=arm, **PH)
    fired = {arm: "page_hinkley"} if change.fired else {}
    counts, sums, sumsq = policy.counts_.astype(float), policy.sums_, policy.sumsq_
    for detection in relative_rule(counts, sums, sumsq, policy.active_, **RELATIVE):
        if detection.fired:
            fired.setdefault(detection.arm, "relative")
    for model, rule in sorted(fired.items()):
        if policy.active_[model] and policy.active_.sum() > 1:
            policy.exclude(model)
            detectors[model] = PageHinkleyState()
            run.rollbacks.append((chunk, model, rule))


def classification_metrics(scored: Scored, arms: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (and cost) of the predictions actually served.

    The confusion counts of the served model are summed over all chunks before the ratios
    are taken, so chunks without positives need no special case.
    """
    tp, fp, fn, tn = (float(v) for v in scored.counts[arms, np.arange(len(arms))].sum(axis=0))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    metrics = {
        "accuracy": (tp + tn) / (tp + fp + fn + tn),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    if scored.stream.kind == "fraud":
        metrics["cost"] = COST_FALSE_NEGATIVE * fn + COST_FALSE_POSITIVE * fp
    return metrics


def summarize(run: Run, scored: Scored) -> dict[str, Any]:
    """Everything the results table reports about one run."""
    best_share = float(np.mean(run.rewards >= run.best))
    return {
        "strategy": run.strategy,
        "cumulative_reward": float(run.rewards.sum()),
        "mean_reward": float(run.rewards.mean()),
        "regret": run.regret,
        "switches": run.switches,
        "rollbacks": len(run.rollbacks),
        "best_model_share": best_share,
        **classification_metrics(scored, run.arms),
    }


@dataclass
class DatasetResult:
    """All strategies on all seeds of one dataset."""

    name: str
    synthetic: bool
    drift_note: str
    drift_chunk: int | None
    n_chunks: int
    model_names: tuple[str, ...]
    runs: dict[str, list[Run]]  # strategy → one run per seed
    rows: dict[str, list[dict[str, Any]]]  # strategy → one summary per seed
    model_rewards: list[np.ndarray]  # per seed: (n_models, n_chunks)

    def table(self) -> list[dict[str, Any]]:
        """One row per strategy: means over seeds (and the std of the mean reward)."""
        table = []
        for strategy, rows in self.rows.items():
            row: dict[str, Any] = {"strategy": strategy}
            for key in rows[0]:
                if key != "strategy":
                    row[key] = float(np.mean([r[key] for r in rows]))
            row["mean_reward_std"] = float(np.std([r["mean_reward"] for r in rows]))
            table.append(row)
        return table


def run_dataset(
    scored_by_seed: Iterable[Scored],
    strategies: Iterable[str] = STRATEGIES,
    rollback: str = "traditional",
    progress: Callable[[], None] | None = None,
) -> DatasetResult:
    """Every strategy on every seed's scored stream."""
    if rollback not in ("traditional", "all", "none"):
        raise ValueError("rollback: must be traditional, all or none")
    strategies = list(strategies)
    runs: dict[str, list[Run]] = {s: [] for s in strategies}
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in strategies}
    rewards = []
    first: Scored | None = None
    for seed, scored in enumerate(scored_by_seed):
        first = first or scored
        rewards.append(scored.rewards)
        for strategy in strategies:
            uses_rollback = rollback == "all" or (rollback == "traditional" and strategy in TRADITIONAL)
            run = run_strategy(strategy, scored, seed, uses_rollback)
            runs[strategy].append(run)
            rows[strategy].append(summarize(run, scored))
            if progress:
                progress()
    assert first is not None, "need at least one seed"
    stream = first.stream
    return DatasetResult(
        name=stream.name,
        synthetic=stream.synthetic,
        drift_note=stream.drift_note,
        drift_chunk=stream.drift_chunk,
        n_chunks=stream.n_chunks,
        model_names=MODEL_NAMES,
        runs=runs,
        rows=rows,
        model_rewards=rewards,
    )
