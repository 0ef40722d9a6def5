"""How often do the rollback rules fire when they should not, and how fast when they should?

    python -m bench.guardrails [--json PATH] [--experiments N] [--quick]

A seeded simulation (not a timed benchmark) of K-armed experiments checked after every
batch of 20 rewards per arm, run through the very functions the live guardrails call
(``policies.confidence``, ``policies.change``, ``policies.detectors``), vectorised over
experiments. Three parts:

- **A/A**: K = 2, 5, 10 equal arms (Bernoulli 0.5, Bernoulli 0.9, Beta(7, 3)), 20,000
  rewards per arm: the share of arms (and of experiments) each rule ever rolls back.
- **Breaks**: three arms; arm 0 drops after 200, 1,000 or 10,000 healthy rewards while the
  others stay: the bad rewards it serves before each rule fires (median, p90) and the
  share of runs where it is not caught within 5,000 bad rewards.
- **Promotion**: the A/B strategy's commit on equal arms and on five arms with a +0.02
  best arm, the first release's repeated significance test against the anytime one.

Every row is measured against the first release's rules (the normal-approximation relative
rule and Page–Hinkley) on the same reward streams.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import policies
from bench.results_file import results_write
from policies.change import SHORTFALL_WINDOW, ChangeState, change_update, expected_delay
from policies.confidence import MeanSequence, sequence_update
from policies.detectors import relative_bounds_fired
from policies.guardrails import DEFAULTS
from policies.legacy_detectors import normal_relative_arrays, page_hinkley_arrays, welch_z_test

LOOK = 20  # rewards per arm between checks
FLOOR_WINDOW_BLOCKS = DEFAULTS["window"] // LOOK
NEW_RULES = ("floor", "relative", "change", "shortfall", "default")
OLD_RULES = ("normal_relative", "page_hinkley", "old_default")
RULES = NEW_RULES + OLD_RULES

Sampler = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def bernoulli(p: float) -> Sampler:
    return lambda rng, shape: (rng.random(shape) < p).astype(float)


def beta(a: float, b: float) -> Sampler:
    return lambda rng, shape: rng.beta(a, b, shape)


@dataclass
class Monitors:
    """Every rule's running state for E experiments of K arms (streams = E·K)."""

    experiments: int
    arms: int

    def __post_init__(self) -> None:
        streams = self.experiments * self.arms
        self.sequence = MeanSequence.empty(streams)
        self.change = ChangeState.empty(streams)
        self.shortfall = ChangeState.empty(streams, window=SHORTFALL_WINDOW, alternatives=True)
        self.floor_blocks = np.zeros((streams, FLOOR_WINDOW_BLOCKS))
        self.looks = 0
        self.sums = np.zeros(streams)
        self.sumsq = np.zeros(streams)
        self.ph = [np.zeros(streams) for _ in range(4)]
        self.fired_at = {rule: np.zeros(streams, dtype=np.int64) for rule in RULES}  # look number, 0 = never

    def look(self, rewards: np.ndarray) -> None:
        """Feed one batch (streams, LOOK) and record which rules fire at this look."""
        self.looks += 1
        shape = (self.experiments, self.arms)
        active = np.ones(shape, dtype=bool)
        fired: dict[str, np.ndarray] = {}

        config = DEFAULTS
        self.floor_blocks = np.concatenate([self.floor_blocks[:, 1:], rewards.sum(axis=1)[:, None]], axis=1)
        window = min(self.looks, FLOOR_WINDOW_BLOCKS) * LOOK
        floor_mean = self.floor_blocks.sum(axis=1) / window
        fired["floor"] = (window >= config["floor"]["min_samples"]) & (floor_mean <= config["floor"]["threshold"])

        self.sequence = sequence_update(self.sequence, rewards)
        relative = config["relative"]
        lower, upper = self.sequence.bounds(relative["alpha"] / (2 * self.arms))
        fired["relative"] = relative_bounds_fired(
            lower.reshape(shape),
            upper.reshape(shape),
            self.sequence.count.reshape(shape),
            active,
            margin=relative["margin"],
            min_samples=relative["min_samples"],
        )[0].ravel()

        change = config["change"]
        self.change, result = change_update(
            self.change, rewards, threshold=change["threshold"], min_reference=change["min_reference"]
        )
        fired["change"] = result.alarm_at > 0

        shortfall = config["shortfall"]
        own = rewards.sum(axis=1).reshape(shape)
        others_sum = (own.sum(axis=1, keepdims=True) - own).ravel()  # every arm is active here
        others_count = np.full(others_sum.shape, float(LOOK * (self.arms - 1)))
        self.shortfall, result = change_update(
            self.shortfall,
            rewards,
            others=(others_count, others_sum),
            threshold=shortfall["threshold"],
            min_reference=shortfall["min_reference"],
        )
        fired["shortfall"] = result.alarm_at > 0
        fired["default"] = fired["floor"] | fired["relative"] | fired["change"] | fired["shortfall"]

        self.sums += rewards.sum(axis=1)
        self.sumsq += (rewards**2).sum(axis=1)
        counts = self.sequence.count.reshape(shape)
        legacy = config_legacy()
        fired["normal_relative"] = normal_relative_arrays(
            counts, self.sums.reshape(shape), self.sumsq.reshape(shape), active, **legacy["relative"]
        )[0].ravel()
        ph = legacy["page_hinkley"]
        n, total, statistic, minimum, alarm_at = page_hinkley_arrays(
            self.ph[0],
            self.ph[1],
            self.ph[2],
            self.ph[3],
            rewards,
            delta=ph["delta"],
            threshold=ph["threshold"],
            min_samples=ph["min_samples"],
        )
        self.ph = [n, total, statistic, minimum]
        fired["page_hinkley"] = alarm_at > 0
        fired["old_default"] = fired["floor"] | fired["normal_relative"] | fired["page_hinkley"]

        for rule, now in fired.items():
            first = now & (self.fired_at[rule] == 0)
            self.fired_at[rule][first] = self.looks


def config_legacy() -> dict[str, dict[str, Any]]:
    """The first release's defaults for its two rules."""
    return {
        "relative": {"margin": 0.05, "confidence": 0.95, "min_samples": 100},
        "page_hinkley": {"delta": 0.02, "threshold": 60.0, "min_samples": 30},
    }


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval for a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def run_aa(arms: int, sampler: Sampler, experiments: int, horizon: int, seed: int) -> dict[str, Any]:
    """Equal arms: how many arms (and experiments) each rule ever rolls back."""
    rng = np.random.default_rng(seed)
    monitors = Monitors(experiments, arms)
    for _ in range(horizon // LOOK):
        monitors.look(sampler(rng, (experiments * arms, LOOK)))
    rows = {}
    for rule in RULES:
        fired = monitors.fired_at[rule] > 0
        per_experiment = fired.reshape(experiments, arms).any(axis=1)
        n_fired = int(fired.sum())
        rows[rule] = {
            "false_rollback_rate": n_fired / fired.size,
            "false_rollback_interval": wilson(n_fired, fired.size),
            "false_rollback_rate_experiment": float(per_experiment.mean()),
            "false_rollback_experiment_interval": wilson(int(per_experiment.sum()), experiments),
        }
    return rows


def run_break(
    before: float, after: float, healthy: int, experiments: int, post: int, seed: int, arms: int = 3
) -> dict[str, Any]:
    """Arm 0 drops from ``before`` to ``after`` after ``healthy`` rewards; others stay."""
    rng = np.random.default_rng(seed)
    monitors = Monitors(experiments, arms)
    broken = np.zeros((experiments, arms), dtype=bool)
    broken[:, 0] = True
    broken_streams = broken.ravel()
    break_look = healthy // LOOK
    for look in range(1, (healthy + post) // LOOK + 1):
        means = np.where(broken_streams & (look > break_look), after, before)
        monitors.look((rng.random((experiments * arms, LOOK)) < means[:, None]).astype(float))
    rows = {}
    for rule in RULES:
        at = monitors.fired_at[rule].reshape(experiments, arms)[:, 0]
        early = (at > 0) & (at <= break_look)
        caught = at > break_look
        delays = (at[caught] - break_look) * LOOK
        considered = experiments - int(early.sum())
        missed = considered - int(caught.sum())
        all_delays = np.concatenate([delays, np.full(missed, np.inf)])
        rows[rule] = {
            "median_delay": _quantile(all_delays, 0.5),
            "p90_delay": _quantile(all_delays, 0.9),
            "missed_rate": missed / considered if considered else None,
            "missed_interval": wilson(missed, considered),
            "fired_before_break": float(early.mean()),
        }
    return rows


def _quantile(values: np.ndarray, q: float) -> float | None:
    """The q-quantile; None when it falls on a run that was never caught."""
    if values.size == 0:
        return None
    value = float(np.quantile(values, q, method="inverted_cdf"))
    return value if math.isfinite(value) else None


def calibrate(
    streams: int, horizon: int, seed: int, means: tuple[float, ...] = (0.05, 0.2, 0.5, 0.8, 0.9, 0.95)
) -> dict:
    """The largest change statistic each stationary stream reaches within ``horizon``.

    The threshold that keeps the share of alarming arms at or below q is the (1 − q)
    quantile of these maxima, for the worst mean.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for mean in means:
        state = ChangeState.empty(streams)
        largest = np.zeros(streams)
        for _ in range(horizon // LOOK):
            state, result = change_update(state, (rng.random((streams, LOOK)) < mean).astype(float), threshold=np.inf)
            largest = np.maximum(largest, result.statistic)
        out[mean] = {q: float(np.quantile(largest, 1 - q)) for q in (0.01, 0.005, 0.001)}
    return out


PROMOTION_CHECKPOINTS = (20_000, 50_000, 100_000, 200_000)


def run_promotion(means: tuple[float, ...], experiments: int, total: int, seed: int, budget: int = 1000) -> dict:
    """The A/B strategy with ``require_significance`` on Bernoulli arms with ``means``
    (uniform split, a check every ``budget`` rewards): the share of runs committed by each
    checkpoint, and the share committed to an arm that is not the best."""
    rng = np.random.default_rng(seed)
    arms = len(means)
    best_arms = {k for k, m in enumerate(means) if m == max(means)}
    per_check = budget // arms
    committed = {"old": np.full(experiments, -1), "new": np.full(experiments, -1)}
    committed_at = {"old": np.zeros(experiments, dtype=np.int64), "new": np.zeros(experiments, dtype=np.int64)}
    counts = np.zeros((experiments, arms))
    sums = np.zeros((experiments, arms))
    ab_tests = [policies.ABTest(arms, budget=budget, require_significance=True, alpha=0.05) for _ in range(experiments)]
    arm_index = np.repeat(np.arange(arms), per_check)
    for check in range(1, total // budget + 1):
        rewards = (rng.random((experiments, arms, per_check)) < np.asarray(means)[None, :, None]).astype(float)
        counts += per_check
        sums += rewards.sum(axis=2)
        for e, policy in enumerate(ab_tests):
            if policy.committed_arm_ < 0:
                policy.update(arm_index, rewards[e].ravel())
        decisions = {"new": np.array([p.committed_arm_ for p in ab_tests]), "old": _welch_commit(counts, sums)}
        for rule, decided in decisions.items():
            first = (committed[rule] < 0) & (decided >= 0)
            committed[rule][first] = decided[first]
            committed_at[rule][first] = check * budget
    return {rule: _commit_summary(committed[rule], committed_at[rule], best_arms, total) for rule in committed}


def _welch_commit(counts: np.ndarray, sums: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """The first release's commit test on Bernoulli sums: best vs runner-up, Welch z, p < alpha."""
    means = sums / counts
    variances = means * (1 - means) * counts / (counts - 1)  # 0/1 rewards: Σx² = Σx
    order = np.argsort(-means, axis=1, kind="stable")
    best, runner = order[:, 0], order[:, 1]
    rows = np.arange(means.shape[0])
    p_values = np.array(
        [
            welch_z_test(means[r, b], variances[r, b], counts[r, b], means[r, u], variances[r, u], counts[r, u])[1]
            for r, b, u in zip(rows, best, runner, strict=True)
        ]
    )
    return np.where(p_values < alpha, best, -1)


def _commit_summary(committed: np.ndarray, at: np.ndarray, best_arms: set[int], total: int) -> dict[str, Any]:
    n = committed.size
    wrong = int(sum(1 for c in committed if c >= 0 and c not in best_arms))
    any_commit = int((committed >= 0).sum())
    checkpoints = [c for c in PROMOTION_CHECKPOINTS if c <= total] or [total]
    return {
        "committed_rate": any_commit / n,
        "committed_interval": wilson(any_commit, n),
        "committed_by": {str(c): float(((committed >= 0) & (at <= c)).mean()) for c in checkpoints},
        "wrong_commit_rate": wrong / n,
        "wrong_commit_interval": wilson(wrong, n),
    }


REWARDS: dict[str, Sampler] = {
    "Bernoulli(0.5)": bernoulli(0.5),
    "Bernoulli(0.9)": bernoulli(0.9),
    "Beta(7, 3)": beta(7, 3),
}
DROPS = ((0.85, 0.20), (0.85, 0.65), (0.5, 0.3), (0.9, 0.85))
HEALTHY = (200, 1000, 10_000)
PROMOTION = {
    "2 equal arms": (0.5, 0.5),
    "5 equal arms": (0.5,) * 5,
    "5 arms, best +0.02": (0.5,) * 4 + (0.52,),
    "5 arms, best +0.05": (0.5,) * 4 + (0.55,),
}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _delay(value: float | None) -> str:
    return "never" if value is None else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--experiments", type=int, default=1000, help="simulated experiments per scenario")
    parser.add_argument("--horizon", type=int, default=20_000, help="A/A rewards per arm")
    parser.add_argument("--post", type=int, default=5_000, help="bad rewards a break is watched for")
    parser.add_argument("--quick", action="store_true", help="200 experiments, shorter horizons (a smoke run)")
    parser.add_argument("--seed", type=int, default=20251202)
    args = parser.parse_args(argv)
    if args.quick:
        args.experiments, args.horizon, args.post = 200, 5_000, 2_000
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": "python -m bench.guardrails" + (" --quick" if args.quick else ""),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "experiments": args.experiments,
        "look_every": LOOK,
        "aa": [],
        "breaks": [],
        "promotion": [],
    }
    print(f"A/A: equal arms, {args.horizon:,} rewards per arm, checked every {LOOK}; {args.experiments:,} experiments")
    print(f"{'arms':>4}  {'rewards':<15}" + "".join(f"{rule:>17}" for rule in RULES))
    for index, (arms, (name, sampler)) in enumerate((k, r) for k in (2, 5, 10) for r in REWARDS.items()):
        rows = run_aa(arms, sampler, args.experiments, args.horizon, args.seed + index)
        report["aa"].append({"arms": arms, "rewards": name, "horizon": args.horizon, "rules": rows})
        print(f"{arms:>4}  {name:<15}" + "".join(f"{_percent(rows[r]['false_rollback_rate']):>17}" for r in RULES))
    print("  (share of arms ever rolled back; per experiment and 95% intervals in the JSON)")

    print(
        f"\nBreaks: 3 arms, arm 0 drops; bad rewards served until the rule fires (median / p90 / missed in {args.post:,})"
    )
    shown = ("default", "relative", "change", "shortfall", "old_default", "page_hinkley")
    print(f"{'drop':<13}{'after':>7}" + "".join(f"{rule:>24}" for rule in shown))
    for index, ((before, after), healthy) in enumerate((d, h) for d in DROPS for h in HEALTHY):
        rows = run_break(before, after, healthy, args.experiments, args.post, args.seed + 100 + index)
        report["breaks"].append({"before": before, "after": after, "healthy": healthy, "rules": rows})
        cells = "".join(
            f"{_delay(rows[r]['median_delay']) + ' / ' + _delay(rows[r]['p90_delay']) + ' / ' + _percent(rows[r]['missed_rate']):>24}"
            for r in shown
        )
        print(f"{before:.2f} → {after:.2f} {healthy:>7,}{cells}")

    total = max(PROMOTION_CHECKPOINTS) if not args.quick else args.horizon
    checkpoints = [c for c in PROMOTION_CHECKPOINTS if c <= total] or [total]
    print("\nPromotion: A/B test with require_significance (α = 0.05), a check every 1,000 rewards; committed by")
    print(f"  {'':<36}" + "".join(f"{c:>10,}" for c in checkpoints))
    for index, (name, means) in enumerate(PROMOTION.items()):
        rows = run_promotion(means, args.experiments, total, args.seed + 200 + index)
        report["promotion"].append({"scenario": name, "means": list(means), "total": total, **rows})
        for rule, label in (("old", "first release"), ("new", "anytime")):
            shares = "".join(f"{_percent(v):>10}" for v in rows[rule]["committed_by"].values())
            print(f"  {name:<20}{label:>16}{shares}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\n{report['seconds']:.0f} s")
    if args.json:
        results_write(args.json, report)
    return report


if __name__ == "__main__":
    main()


# ------------------------------------------------------------------ docs/BENCHMARKS.md
def _cell(row: dict[str, Any]) -> str:
    return f"{_delay(row['median_delay'])} / {_delay(row['p90_delay'])} / {_percent(row['missed_rate'])}"


def _yardstick(before: float, after: float, healthy: int, **shortfall: Any) -> str:
    bad = expected_delay(before, after, healthy, **shortfall)
    return "out of reach" if bad is None else f"{bad:,}"


def markdown_section(data: dict[str, Any]) -> list[str]:
    """The guardrail figures as Markdown tables (for bench.summary)."""
    lines = [
        "### Guardrails: false rollbacks, detection delay, promotion",
        "",
        f"`{data['command']}` — {data['experiments']:,} simulated experiments per row, checked after every "
        f"{data['look_every']} rewards per arm, seeded; the new rules and the first release's on the same streams.",
        "",
        "A/A (equal arms, 20,000 rewards per arm): share of arms ever rolled back, [95 % interval]; per experiment "
        "in the last column.",
        "",
        "| arms | rewards | new default | relative | change | shortfall | first release | its relative rule | Page–Hinkley | new default, per experiment |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["aa"]:
        rules = row["rules"]
        low, high = rules["default"]["false_rollback_interval"]
        lines.append(
            f"| {row['arms']} | {row['rewards']} | {_percent(rules['default']['false_rollback_rate'])} "
            f"[{_percent(low)}, {_percent(high)}] | {_percent(rules['relative']['false_rollback_rate'])} | "
            f"{_percent(rules['change']['false_rollback_rate'])} | {_percent(rules['shortfall']['false_rollback_rate'])} | "
            f"{_percent(rules['old_default']['false_rollback_rate'])} | "
            f"{_percent(rules['normal_relative']['false_rollback_rate'])} | {_percent(rules['page_hinkley']['false_rollback_rate'])} | "
            f"{_percent(rules['default']['false_rollback_rate_experiment'])} |"
        )
    lines += [
        "",
        "Breaks (3 arms; arm 0 drops after the healthy rewards shown, the others stay): bad rewards it serves before "
        "the rule fires, median / p90 / share missed within 5,000. *Yardsticks*: the bad rewards the change and "
        "the shortfall rule need when every mean sits at its expected value (`policies.change.expected_delay`, no "
        "simulation; the shortfall rule's reference gains the two other arms' rewards over the same period); "
        "“out of reach” means the healthy history holds too little evidence for that drop at the rule's threshold.",
        "",
        "| drop | after | new default | change | its yardstick | shortfall | its yardstick | relative | first release | its relative rule | Page–Hinkley |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["breaks"]:
        rules = row["rules"]
        cells = " | ".join(
            [
                _cell(rules["default"]),
                _cell(rules["change"]),
                _yardstick(row["before"], row["after"], row["healthy"]),
                _cell(rules["shortfall"]),
                _yardstick(row["before"], row["after"], row["healthy"], alternatives=2, window=SHORTFALL_WINDOW),
                *(_cell(rules[r]) for r in ("relative", "old_default", "normal_relative", "page_hinkley")),
            ]
        )
        lines.append(f"| {row['before']:.2f} → {row['after']:.2f} | {row['healthy']:,} | {cells} |")
    checkpoints = list(data["promotion"][0]["new"]["committed_by"]) if data["promotion"] else []
    lines += [
        "",
        "Promotion (A/B test, `require_significance`, α = 0.05, Bernoulli arms at 0.5, uniform split): share of "
        "experiments committed by each number of rewards.",
        "",
        "| scenario | rule | " + " | ".join(f"{int(c):,}" for c in checkpoints) + " |",
        "|---|---|" + "---|" * len(checkpoints),
    ]
    for row in data["promotion"]:
        for rule, label in (("old", "first release"), ("new", "anytime")):
            shares = " | ".join(_percent(v) for v in row[rule]["committed_by"].values())
            lines.append(f"| {row['scenario']} | {label} | {shares} |")
    return lines


def target_rows(data: dict[str, Any], met: Callable[[bool], str]) -> list[str]:
    """The guardrail issue's targets, each with this run's figure (for bench.summary)."""
    worst = max(data["aa"], key=lambda row: row["rules"]["default"]["false_rollback_interval"][1])
    low, high = worst["rules"]["default"]["false_rollback_interval"]
    rows = [
        f"| guardrails A/A: default false-rollback rate ≤ 1 % per arm (its 95 % interval) | worst: {worst['arms']} arms, {worst['rewards']}: "
        f"{_percent(worst['rules']['default']['false_rollback_rate'])} [{_percent(low)}, {_percent(high)}] | {met(high <= 0.01)} |"
    ]
    targets = {(0.85, 0.20): (25, None), (0.85, 0.65): (150, 250), (0.5, 0.3): (200, None)}
    for row in data["breaks"]:
        default = row["rules"]["default"]
        limit = targets.get((row["before"], row["after"]))
        if limit:
            median, p90 = default["median_delay"], default["p90_delay"]
            ok = (
                median is not None
                and median <= limit[0]
                and (limit[1] is None or (p90 is not None and p90 <= limit[1]))
            )
            goal = f"median ≤ {limit[0]}" + (f", p90 ≤ {limit[1]}" if limit[1] else "")
            rows.append(
                f"| break {row['before']:.2f} → {row['after']:.2f} after {row['healthy']:,}: {goal} | {_cell(default)} | {met(ok)} |"
            )
    worst_break = max(data["breaks"], key=lambda row: row["rules"]["default"]["missed_rate"] or 0.0)
    missed = worst_break["rules"]["default"]["missed_rate"] or 0.0
    rows.append(
        f"| breaks: missed within 5,000 bad rewards ≤ 1 % in every scenario | worst: {worst_break['before']:.2f} → "
        f"{worst_break['after']:.2f} after {worst_break['healthy']:,}: {_percent(missed)} | {met(missed <= 0.01)} |"
    )
    for row in data["promotion"]:
        committed = row["new"]["committed_by"]
        first = next(iter(committed))
        if len(set(row["means"])) == 1:  # equal arms: any commit is wrong
            rate, (low, high) = row["new"]["committed_rate"], row["new"]["committed_interval"]
            rows.append(
                f"| promotion, {row['scenario']}: commits ≤ α = 5 % | {_percent(rate)} by {int(row['total']):,} rewards "
                f"[{_percent(low)}, {_percent(high)}] | {met(rate <= 0.05)} |"
            )
        elif row["scenario"] == "5 arms, best +0.02":
            rows.append(
                f"| promotion, {row['scenario']}: share committed by {int(first):,} rewards (reported, no target) | "
                f"{_percent(committed[first])}; first release {_percent(row['old']['committed_by'][first])} | — |"
            )
    return rows
