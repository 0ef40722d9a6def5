"""Policy benchmark: mabdash's policies against mabwiser, side by side in one run.

    python -m bench.policies [--quick] [--json PATH]

For K = 10 arms it measures, for epsilon-greedy, UCB1 and Thompson sampling in both
libraries: the time of one decision (ours: ``choose``; mabwiser: ``predict``), the time of
a batch update of 100,000 rewards (ours: ``update``; mabwiser: ``partial_fit``), and the
cumulative regret of both on identical Bernoulli reward streams (same seeds, same reward
table). It also times every mabdash strategy alone, and Thompson's ``allocation()``.
A benchmark prints figures; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import policies
from bench.results_file import results_write

K = 10
BATCH = 100_000
MEANS = np.linspace(0.1, 0.5, K)
MABWISER_POLICIES = {"epsilon_greedy": "EpsilonGreedy", "ucb1": "UCB1", "thompson": "ThompsonSampling"}


def best_time(fn: Callable[[], Any], number: int, repeat: int = 5) -> float:
    """Seconds per call: the best of ``repeat`` runs of ``number`` calls (least noisy)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def reward_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, K, BATCH)
    return arms, (rng.random(BATCH) < MEANS[arms]).astype(np.float64)


def mabwiser_model(kind: str, seed: int) -> Any:
    from mabwiser.mab import MAB, LearningPolicy

    learning_policy = {
        "epsilon_greedy": lambda: LearningPolicy.EpsilonGreedy(epsilon=0.1),
        "ucb1": lambda: LearningPolicy.UCB1(alpha=1.0),
        "thompson": lambda: LearningPolicy.ThompsonSampling(),
    }[kind]()
    return MAB(list(range(K)), learning_policy, seed=seed)


def time_ours(kind: str) -> dict[str, float]:
    params = {"scores": list(MEANS)} if kind == "validation" else {}
    policy = policies.make_policy(kind, K, params, seed=0)
    arms, rewards = reward_batch(1)
    policy.update(arms, rewards)
    rng = np.random.default_rng(0)
    policy.choose(rng)  # warm the allocation cache, as a serving process would be
    decide = best_time(lambda: policy.choose(rng), number=20_000)

    def fresh_update() -> None:
        policy.update(arms, rewards)

    update = best_time(fresh_update, number=20)
    result = {"decide_us": decide * 1e6, "update_100k_ms": update * 1e3}
    if kind in ("thompson", "discounted_thompson"):

        def allocation() -> None:
            policy._invalidate()
            policy.allocation()

        result["allocation_ms"] = best_time(allocation, number=20) * 1e3
    if kind == "thompson":
        # The other design: draw from the posterior on every decision, as mabwiser does. Same
        # state, numpy's Beta sampler, one draw per arm and an argmax per call.
        assert isinstance(policy, policies.Thompson)
        posterior = policy.posterior()
        alpha, beta = posterior["alpha"], posterior["beta"]
        result["sample_per_call_us"] = best_time(lambda: int(np.argmax(rng.beta(alpha, beta))), number=20_000) * 1e6
    return result


def time_mabwiser(kind: str) -> dict[str, float]:
    model = mabwiser_model(kind, seed=0)
    arms, rewards = reward_batch(1)
    model.fit(arms, rewards.astype(int))
    decide = best_time(model.predict, number=2000)
    update = best_time(lambda: model.partial_fit(arms, rewards.astype(int)), number=3, repeat=3)
    return {"decide_us": decide * 1e6, "update_100k_ms": update * 1e3}


def regret_run(kind: str, library: str, seed: int, horizon: int, batch: int) -> float:
    """Cumulative pseudo-regret on a reward table shared by both libraries."""
    table = (np.random.default_rng(1000 + seed).random((horizon, K)) < MEANS).astype(np.float64)
    gaps = MEANS.max() - MEANS
    total = 0.0
    if library == "mabdash":
        # The strategies' own rules, like mabwiser's: no exploration floor (it costs
        # min_share × Σ gaps per decision by design, which is not what this compares).
        policy = policies.make_policy(kind, K, {"min_share": 0.0}, seed=seed)
        rng = np.random.default_rng(seed)
        for start in range(0, horizon, batch):
            chosen = policy.choose(rng, batch)
            policy.update(chosen, table[start + np.arange(batch), chosen])
            total += gaps[chosen].sum()
        return total
    model = mabwiser_model(kind, seed=seed)
    for start in range(0, horizon, batch):
        if start == 0:
            chosen = np.arange(batch) % K  # mabwiser must be fitted before predicting
        else:
            chosen = np.array([model.predict() for _ in range(batch)])
        observed = table[start + np.arange(batch), chosen]
        if start == 0:
            model.fit(chosen, observed.astype(int))
        else:
            model.partial_fit(chosen, observed.astype(int))
        total += gaps[chosen].sum()
    return total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and a shorter horizon")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    seeds = range(2 if args.quick else 5)
    horizon = 2000 if args.quick else 10_000
    batch = 10

    from importlib.metadata import version

    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "mabwiser": version("mabwiser"),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": {
            "arms": K,
            "batch_update": BATCH,
            "regret_horizon": horizon,
            "regret_batch": batch,
            "regret_seeds": len(seeds),
            "means": MEANS.round(4).tolist(),
        },
        "comparison": {},
        "mabdash": {},
    }
    print(
        f"K={K}; decision = one arm; batch update = {BATCH:,} rewards; regret over {horizon:,} rounds "
        f"(decisions in batches of {batch}), {len(seeds)} seeds, identical reward streams\n"
    )
    print(
        f"{'strategy':<16}{'decide µs ours/mabwiser':>26}{'ratio':>8}{'update ms ours/mabwiser':>26}{'ratio':>8}"
        f"{'regret ours (±sd)':>20}{'regret mabwiser (±sd)':>24}"
    )
    for kind in MABWISER_POLICIES:
        ours, theirs = time_ours(kind), time_mabwiser(kind)
        regret = {lib: [regret_run(kind, lib, s, horizon, batch) for s in seeds] for lib in ("mabdash", "mabwiser")}
        row = {
            "ours": ours,
            "mabwiser": theirs,
            "decide_ratio": ours["decide_us"] / theirs["decide_us"],
            "update_ratio": ours["update_100k_ms"] / theirs["update_100k_ms"],
            "regret_ours": regret["mabdash"],
            "regret_mabwiser": regret["mabwiser"],
        }
        results["comparison"][kind] = row
        fmt = lambda xs: f"{statistics.mean(xs):8.1f} ±{statistics.stdev(xs) if len(xs) > 1 else 0:6.1f}"  # noqa: E731
        print(
            f"{kind:<16}{ours['decide_us']:>12.2f} / {theirs['decide_us']:<11.2f}{row['decide_ratio']:>8.3f}"
            f"{ours['update_100k_ms']:>12.3f} / {theirs['update_100k_ms']:<11.2f}{row['update_ratio']:>8.3f}"
            f"{fmt(regret['mabdash']):>20}{fmt(regret['mabwiser']):>24}"
        )
    print(f"\n{'mabdash strategy':<22}{'decide µs':>12}{'update 100k ms':>16}{'allocation ms':>16}")
    for kind in policies.POLICIES:
        ours = time_ours(kind)
        results["mabdash"][kind] = ours
        allocation = f"{ours['allocation_ms']:.3f}" if "allocation_ms" in ours else "-"
        print(f"{kind:<22}{ours['decide_us']:>12.2f}{ours['update_100k_ms']:>16.3f}{allocation:>16}")
    if args.json:
        results_write(args.json, results)
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
