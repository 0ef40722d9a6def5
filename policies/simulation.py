"""A small simulation core: Bernoulli bandits, possibly with abrupt changes.

Used by the correctness tests and the benchmarks to run any policy against an
environment whose truth is known, so regret can be measured exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies._checks import check_int
from policies.base import Policy


class PiecewiseBernoulli:
    """Arms with Bernoulli rewards whose means may switch at given rounds.

    Parameters
    ----------
    means : sequence of float
        Success probability of each arm at round 0.
    changes : sequence of (int, sequence of float), optional
        ``(round, new_means)`` pairs, in increasing round order: from that round on the
        arms have the new means.
    """

    def __init__(self, means: Sequence[float], changes: Sequence[tuple[int, Sequence[float]]] = ()) -> None:
        self.segments = [(0, np.asarray(means, dtype=np.float64))]
        for start, new_means in changes:
            new = np.asarray(new_means, dtype=np.float64)
            if new.shape != self.segments[0][1].shape or start <= self.segments[-1][0]:
                raise ValueError("changes: need increasing rounds and one mean per arm")
            self.segments.append((int(start), new))
        for _, segment in self.segments:
            if ((segment < 0) | (segment > 1)).any():
                raise ValueError("means: every mean must be in [0, 1]")

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return self.segments[0][1].size

    def means_at(self, rounds: np.ndarray) -> np.ndarray:
        """Means of all arms at each of ``rounds``: shape (len(rounds), n_arms)."""
        starts = np.array([start for start, _ in self.segments])
        table = np.stack([means for _, means in self.segments])
        return table[np.searchsorted(starts, rounds, side="right") - 1]

    def pull(self, arms: np.ndarray, rounds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw a 0/1 reward for each ``arms[i]`` played at ``rounds[i]``."""
        means = self.means_at(rounds)[np.arange(arms.size), arms]
        drawn: np.ndarray = (rng.random(arms.size) < means).astype(np.float64)
        return drawn


@dataclass(frozen=True)
class Trajectory:
    """What happened in one simulated run.

    Attributes
    ----------
    arms, rewards : ndarray of shape (horizon,)
        The arm played and the reward observed at every round.
    regret : ndarray of shape (horizon,)
        Cumulative pseudo-regret: the sum over rounds of the best mean minus the mean of
        the arm played, using the true means at each round.
    best_arm : ndarray of shape (horizon,)
        The truly best arm at each round.
    """

    arms: np.ndarray
    rewards: np.ndarray
    regret: np.ndarray
    best_arm: np.ndarray

    def best_arm_share(self, start: int = 0) -> float:
        """Share of rounds from ``start`` on in which the best arm was played."""
        return float(np.mean(self.arms[start:] == self.best_arm[start:]))


def run_bandit(
    policy: Policy,
    env: PiecewiseBernoulli,
    horizon: int,
    rng: np.random.Generator,
    *,
    batch_size: int = 1,
) -> Trajectory:
    """Play ``policy`` against ``env`` for ``horizon`` rounds.

    Each step draws ``batch_size`` arms from the current allocation, observes their
    rewards and updates the policy once — the delayed, batched feedback of a live
    deployment, where the learner applies rewards in batches.
    """
    horizon = check_int("horizon", horizon, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    arms = np.empty(horizon, dtype=np.int64)
    rewards = np.empty(horizon)
    for start in range(0, horizon, batch_size):
        size = min(batch_size, horizon - start)
        rounds = np.arange(start, start + size)
        chosen = policy.choose(rng, size)
        observed = env.pull(chosen, rounds, rng)
        policy.update(chosen, observed)
        arms[start : start + size] = chosen
        rewards[start : start + size] = observed
    all_rounds = np.arange(horizon)
    means = env.means_at(all_rounds)
    regret = np.cumsum(means.max(axis=1) - means[all_rounds, arms])
    return Trajectory(arms=arms, rewards=rewards, regret=regret, best_arm=means.argmax(axis=1))
