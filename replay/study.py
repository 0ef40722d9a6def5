"""The replay of deployment strategies — the core of ``manage.py replay``.

Two **routing granularities** (both reported):

- ``chunk`` — for each chunk a strategy picks one model (drawing from its allocation) and
  that model serves the whole chunk: the paper's "chunked simulation" as far as the
  summaries of it we have tell (docs/REPRODUCTION.md);
- ``request`` — every request is routed by a draw from the strategy's allocation, as
  mabdash routes live traffic.

In both, the labels of a chunk are revealed after it and the strategy learns **every
request's reward** of the chunk in one batch — the live pipeline's batched learning. A chunk
therefore counts as the ~400 (census) or ~1,200 (fraud) observations it is, not as one coin
flip, so the posteriors and confidence bonuses have the right width.

**Seeds.** Seed ``i`` names a pair of independent random streams (``numpy`` SeedSequence
children): the *stream* seed (data order, synthetic data, model training) and the *policy*
seed (the strategies' draws and naive's designated model). Every strategy of a seed sees the
same stream and models, so strategies are compared paired by seed.

**Rollback** uses the live guardrails' rules (:mod:`replay.rollback`) for every strategy by
default (``rollback="traditional"`` limits them to naive, validation and A/B testing, as the
first release did; ``"none"`` switches them off).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import policies
from replay.rollback import Guardrails
from replay.streams import COST_FALSE_NEGATIVE, COST_FALSE_POSITIVE, Scored, confusion

TRADITIONAL = ("naive", "validation", "ab_test")
#: The paper's six, then the drift-aware variants (not in the paper).
STRATEGIES = (*policies.PAPER_POLICIES, "discounted_thompson", "sw_ucb")
ROUTINGS = ("chunk", "request")
ROLLBACK_MODES = ("all", "traditional", "none")
#: Chunk-denominated hyper-parameters, turned into requests per stream (see ``_policy``).
AB_BUDGET_CHUNKS = 10
DISCOUNT_PER_CHUNK = 0.9
WINDOW_CHUNKS = 20


def seeds(seed: int) -> tuple[int, int]:
    """(stream seed, policy seed) of study seed ``seed``: independent 32-bit integers
    (scikit-learn's ``random_state`` takes no more)."""
    stream, policy = np.random.SeedSequence(seed).spawn(2)
    return int(stream.generate_state(1)[0]), int(policy.generate_state(1)[0])


def naive_model(policy_seed: int, n_models: int) -> int:
    """The model naive deployment ships on this seed: drawn uniformly, never "the first trained"."""
    return int(np.random.default_rng([policy_seed, 0]).integers(n_models))


@dataclass
class Run:
    """One strategy on one seed's stream, one routing."""

    strategy: str
    served: np.ndarray  # (n_chunks, n_models): requests each model served in each chunk
    rewards: np.ndarray  # (n_chunks,): mean request reward obtained in each chunk
    confusion: np.ndarray  # (4,): TP, FP, FN, TN of the predictions served
    rollbacks: list[tuple[int, int, str]] = field(default_factory=list)  # (chunk, model, rule)
    learned: int = 0  # rewards the strategy learned from (every request served)

    @property
    def arms(self) -> np.ndarray:
        """The model that served most requests of each chunk."""
        return np.asarray(self.served.argmax(axis=1))

    @property
    def switches(self) -> int:
        arms = self.arms
        return int(np.sum(arms[1:] != arms[:-1]))


def _policy(kind: str, scored: Scored, policy_seed: int, naive_arm: int) -> policies.Policy:
    # The paper's strategies as published: no exploration floor (mabdash's live default
    # of 1 % per arm exists for off-policy evaluation, which the study does not need).
    # Hyper-parameters the study states in chunks are converted to requests, because the
    # policies count observations and a chunk is that many of them.
    chunk = float(np.mean(np.diff(scored.offsets)))
    params: dict[str, Any] = {"min_share": 0.0}
    if kind == "naive":
        params["arm"] = naive_arm
    elif kind == "validation":
        params["scores"] = scored.validation.tolist()
    elif kind == "ab_test":
        params["budget"] = round(AB_BUDGET_CHUNKS * chunk)
    elif kind == "discounted_thompson":
        params["gamma"] = DISCOUNT_PER_CHUNK ** (1.0 / chunk)
    elif kind == "sw_ucb":
        params["window"] = round(WINDOW_CHUNKS * chunk)
    return policies.make_policy(kind, scored.n_models, params, seed=policy_seed)


def run_strategy(
    kind: str, scored: Scored, policy_seed: int, *, routing: str, rollback: bool, naive_arm: int = 0
) -> Run:
    """Replay one strategy over the chunks; deterministic for a policy seed.

    ``naive_arm`` is the model naive deployment ships (ignored by the other strategies).
    """
    if routing not in ROUTINGS:
        raise ValueError(f"routing: must be one of {', '.join(ROUTINGS)}")
    policy = _policy(kind, scored, policy_seed, naive_arm)
    rng = np.random.default_rng([policy_seed, 1])
    n_chunks, n_models = scored.stream.n_chunks, scored.n_models
    run = Run(kind, np.zeros((n_chunks, n_models), dtype=np.int64), np.empty(n_chunks), np.zeros(4, dtype=np.int64))
    guardrails = Guardrails(n_models) if rollback else None
    for c in range(n_chunks):
        lo, hi = int(scored.offsets[c]), int(scored.offsets[c + 1])
        requests = np.arange(lo, hi)
        arms = np.full(hi - lo, policy.choose(rng)) if routing == "chunk" else policy.choose(rng, size=hi - lo)
        got = scored.request_rewards[arms, requests]
        run.served[c] = np.bincount(arms, minlength=n_models)
        run.rewards[c] = got.mean()
        run.confusion += confusion(scored.predictions[arms, requests], scored.labels[lo:hi])
        policy.update(arms, got)
        if guardrails is not None:
            for model, rule in sorted(guardrails.observe(arms, got, policy.active_).items()):
                if policy.active_[model] and policy.active_.sum() > 1:
                    policy.exclude(model)
                    guardrails.rolled_back(model)
                    run.rollbacks.append((c, model, rule))
    run.learned = policy.n_observations
    return run


def classification_metrics(kind: str, confusion: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (and, for fraud, the total cost) of what was served."""
    tp, fp, fn, tn = (float(v) for v in confusion)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    metrics = {
        "accuracy": (tp + tn) / (tp + fp + fn + tn),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    if kind == "fraud":
        metrics["cost"] = COST_FALSE_NEGATIVE * fn + COST_FALSE_POSITIVE * fp
    return metrics


def baselines(scored: Scored) -> dict[str, np.ndarray]:
    """Per-chunk rewards of the three yardsticks regret is measured against.

    - ``fixed``: the best single model in hindsight over the whole stream;
    - ``segment``: the best model in hindsight of each segment (before and after the drift
      or the fault) — what a perfect change detector with a perfect choice would get;
    - ``chunk``: the best model of every chunk — includes per-chunk noise no strategy can
      predict, so it is a floor, not a target.
    """
    rewards, sizes = scored.rewards, np.diff(scored.offsets)
    fixed = rewards[int(np.argmax(rewards @ sizes))]
    segment = np.empty(rewards.shape[1])
    for lo, hi in scored.segments():
        segment[lo:hi] = rewards[int(np.argmax(rewards[:, lo:hi] @ sizes[lo:hi])), lo:hi]
    return {"fixed": fixed, "segment": segment, "chunk": rewards.max(axis=0)}


def summarize(run: Run, scored: Scored) -> dict[str, Any]:
    """Everything the results tables report about one run."""
    sizes = np.diff(scored.offsets)
    best_of_chunk = scored.rewards.argmax(axis=0)
    yardsticks = baselines(scored)
    summary: dict[str, Any] = {
        "strategy": run.strategy,
        "mean_reward": float(run.rewards @ sizes / sizes.sum()),
        "cumulative_reward": float(run.rewards.sum()),
        **{f"regret_{name}": float(np.sum(best - run.rewards)) for name, best in yardsticks.items()},
        "switches": run.switches,
        "rollbacks": len(run.rollbacks),
        "best_model_share": float(run.served[np.arange(len(sizes)), best_of_chunk].sum() / sizes.sum()),
        **classification_metrics(scored.stream.kind, run.confusion),
    }
    if scored.broken is not None:
        summary.update(_fault_summary(run, scored))
    return summary


def _fault_summary(run: Run, scored: Scored) -> dict[str, Any]:
    """How a strategy handled the broken model: requests it served broken, whether it was
    rolled back, and false alarms — change-rule rollbacks of a model that had not changed
    (every model but the broken one, and the broken one before it broke; the stream is
    otherwise stationary). Relative-rule rollbacks of a model that is merely worse than
    another are not false: that is the rule's purpose."""
    assert scored.broken is not None
    model, chunk = scored.broken
    caught = [c for c, m, _ in run.rollbacks if m == model and c >= chunk]
    return {
        "broken_served": int(run.served[chunk:, model].sum()),
        "broken_rolled_back": bool(caught),
        "false_alarms": sum(1 for c, m, rule in run.rollbacks if rule == "change" and (m != model or c < chunk)),
    }


@dataclass
class SeedRuns:
    """Every strategy and routing on one seed's scored stream (what a worker sends back)."""

    seed: int
    stream_name: str
    synthetic: bool
    description: str  # the stream's drift and fault, in words
    runs: dict[tuple[str, str], Run]  # (routing, strategy) → run
    rows: dict[tuple[str, str], dict[str, Any]]
    model_rewards: np.ndarray  # (n_models, n_chunks)
    chunk_sizes: np.ndarray  # (n_chunks,)
    change_chunk: int | None
    broken: tuple[int, int] | None
    naive_model: int


def run_seed(scored: Scored, seed: int, strategies: Iterable[str], routings: Iterable[str], rollback: str) -> SeedRuns:
    """Every strategy under every routing on one seed's stream."""
    if rollback not in ROLLBACK_MODES:
        raise ValueError(f"rollback: must be one of {', '.join(ROLLBACK_MODES)}")
    _, policy_seed = seeds(seed)
    naive_arm = naive_model(policy_seed, scored.n_models)
    runs, rows = {}, {}
    for routing in routings:
        for strategy in strategies:
            uses_rollback = rollback == "all" or (rollback == "traditional" and strategy in TRADITIONAL)
            # Each strategy draws from its own child of the policy seed, the same under
            # both routings and whichever strategies run beside it.
            run = run_strategy(
                strategy,
                scored,
                _strategy_seed(policy_seed, strategy),
                routing=routing,
                rollback=uses_rollback,
                naive_arm=naive_arm,
            )
            runs[routing, strategy] = run
            rows[routing, strategy] = summarize(run, scored)
    return SeedRuns(
        seed=seed,
        stream_name=scored.stream.name,
        synthetic=scored.stream.synthetic,
        description=scored.description,
        runs=runs,
        rows=rows,
        model_rewards=scored.rewards,
        chunk_sizes=np.diff(scored.offsets),
        change_chunk=scored.change_chunk,
        broken=scored.broken,
        naive_model=naive_arm,
    )


def _strategy_seed(policy_seed: int, strategy: str) -> int:
    index = STRATEGIES.index(strategy) + 1  # 0 is naive's model draw
    return int(np.random.SeedSequence([policy_seed, index]).generate_state(1)[0])
