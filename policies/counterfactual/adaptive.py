"""Adaptive targets: replay a strategy on the log with rejection sampling (see the package docs).

The target strategy starts fresh and walks through the log in order. While its allocation
is ``π`` (it changes only when it learns), a logged decision of arm ``a`` with propensity
``p`` is *accepted* with probability ``c · π(a) / p``, ``c`` being the smallest logged
propensity. Given acceptance, the arm is distributed as ``π``: the accepted decisions are
what the target would have served, and their rewards what it would have earned (for
non-contextual arms whose rewards do not depend on who chose them). The target learns from
what it accepted, in batches of ``batch`` accepted decisions, like the live learner.

The estimate is the mean reward over the accepted decisions, averaged over ``replays``
seeded replays (the acceptance draws and the target's own randomness differ between them).
Its interval adds the variance between replays to the mean within-replay sampling variance
(``SE² = mean(s_r²) + var(m_r) / R``); ``tests/policies/test_counterfactual.py`` measures its
coverage on simulated logs. A replay evaluates the target over as many decisions as it
accepted, not over the whole log: a strategy that learns slowly is measured in its early
phase — the accepted count is reported next to every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

import policies
from policies._checks import check_finite_float, check_int
from policies.counterfactual.log import MIN_ACCEPTED, Estimate, Log, z_value


def replay_estimate(
    log: Log,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    replays: int = 5,
    batch: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Estimate the mean reward per decision of strategy ``kind`` (with ``params``) on ``log``.

    Parameters
    ----------
    log : Log
    kind : str
        A strategy of :data:`policies.POLICIES`.
    params : mapping, optional
        Its hyper-parameters (``validation`` needs ``scores``).
    name : str, optional
        Label in the result (default: ``kind``).
    replays : int, default 5
        Seeded replays averaged.
    batch : int, optional
        Accepted decisions between the target's updates. By default the target learns in
        at most 200 steps over the log (every ``max(10, ⌈expected accepted / 200⌉)``
        accepted decisions; each decision is accepted with probability ``c`` on average),
        which keeps a replay of 10⁶ decisions well under a second.
    confidence : float, default 0.95
    seed : int, default 0

    Returns
    -------
    Estimate
        ``support`` is the mean number of accepted decisions; ``details`` holds each
        replay's mean and accepted count.
    """
    replays = check_int("replays", replays, minimum=1)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    confidence = check_finite_float("confidence", confidence, low=0.5, high=1.0, high_inclusive=False)
    label = name or kind
    keep = log.rewarded
    arms, p, r = log.arms[keep], log.propensities[keep], log.rewards[keep]
    if arms.size == 0:
        return Estimate(label, "replay", None, None, None, None, None, None, 0.0, 0, "no rewarded decisions")
    policies.make_policy(kind, log.n_arms, params)  # validate kind and params before the work
    scale = float(p.min())
    step = batch or max(10, math.ceil(scale * arms.size / 200))
    means, errors, accepted = [], [], []
    for replay in range(replays):
        rewards = _replay_once(arms, p, r, kind, params, log.n_arms, scale, step, seed + replay)
        accepted.append(rewards.size)
        if rewards.size:
            means.append(float(rewards.mean()))
            errors.append(float(rewards.var(ddof=1) / rewards.size) if rewards.size > 1 else math.inf)
    support = float(np.mean(accepted))
    if not means:
        return Estimate(
            label, "replay", None, None, None, None, None, None, 0.0, int(arms.size), "no decision accepted"
        )
    value = float(np.mean(means))
    between = float(np.var(means, ddof=1)) / len(means) if len(means) > 1 else 0.0
    se = math.sqrt(float(np.mean(errors)) + between)
    z = z_value(confidence)
    actual = float(r.mean())
    actual_se = float(r.std(ddof=1)) / math.sqrt(r.size) if r.size > 1 else math.inf
    difference_se = math.sqrt(se**2 + actual_se**2)  # conservative: the two share decisions
    warning = None
    if support < MIN_ACCEPTED:
        warning = f"only {support:.0f} decisions accepted on average (fewer than {MIN_ACCEPTED}): unreliable"
    return Estimate(
        target=label,
        method="replay",
        value=value,
        lower=value - z * se,
        upper=value + z * se,
        difference=value - actual,
        difference_lower=value - actual - z * difference_se,
        difference_upper=value - actual + z * difference_se,
        support=support,
        decisions=int(arms.size),
        warning=warning,
        details={"replay_means": means, "accepted": accepted, "acceptance_scale": scale, "batch": step},
    )


def _replay_once(
    arms: np.ndarray,
    propensities: np.ndarray,
    rewards: np.ndarray,
    kind: str,
    params: Mapping[str, Any] | None,
    n_arms: int,
    scale: float,
    batch: int,
    seed: int,
) -> np.ndarray:
    """The rewards the target accepted in one replay, in order."""
    rng = np.random.default_rng(seed)
    target = policies.make_policy(kind, n_arms, params, seed=seed)
    uniforms = rng.random(arms.size)
    earned: list[np.ndarray] = []
    position = 0
    # Look ahead a window sized for about ``batch`` acceptances (one per ~1/scale decisions),
    # doubling it when too few come up, so the work stays linear in the log's length.
    window = max(1024, int(4 * batch / scale))
    while position < arms.size:
        allocation = target.allocation()
        size = window
        while True:
            end = min(arms.size, position + size)
            chance = scale * allocation[arms[position:end]] / propensities[position:end]
            hits = np.flatnonzero(uniforms[position:end] < chance)[:batch] + position
            if hits.size == batch or end == arms.size:
                break
            size *= 2
        if hits.size == 0:
            break
        target.update(arms[hits], rewards[hits])
        earned.append(rewards[hits])
        position = int(hits[-1]) + 1
    return np.concatenate(earned) if earned else np.zeros(0)
