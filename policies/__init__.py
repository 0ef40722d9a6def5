"""Deployment strategies for choosing which model serves traffic — pure numpy.

This package never imports Django or ``mabdash``; everything that decides or learns in
mabdash (live experiments, the replay study, the benchmarks) goes through it.

>>> import numpy as np, policies
>>> policy = policies.make_policy("thompson", n_arms=3, seed=7)
>>> policy.update([0, 1, 1], [1.0, 0.0, 1.0])
>>> round(float(policy.allocation().sum()), 6)
1.0
>>> arm = policy.choose(np.random.default_rng(0))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.ab_testing import ABTest
from policies.base import Policy
from policies.epsilon_greedy import EpsilonGreedy
from policies.naive import Naive
from policies.thompson import DiscountedThompson, Thompson
from policies.ucb import UCB1, SlidingWindowUCB
from policies.validation import ValidationBest

#: Every strategy by its ``kind``: the paper's six, then the drift-aware variants.
POLICIES: dict[str, type[Policy]] = {
    cls.kind: cls
    for cls in (
        Naive,
        ValidationBest,
        ABTest,
        EpsilonGreedy,
        UCB1,
        Thompson,
        DiscountedThompson,
        SlidingWindowUCB,
    )
}

#: The six strategies compared in the paper.
PAPER_POLICIES = ("naive", "validation", "ab_test", "epsilon_greedy", "ucb1", "thompson")


def policy_class(kind: str) -> type[Policy]:
    """Return the class for ``kind``, or raise ``ValueError`` listing the valid kinds."""
    try:
        return POLICIES[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind: unknown policy {kind!r}; expected one of {', '.join(POLICIES)}") from None


def make_policy(kind: str, n_arms: int, params: Mapping[str, Any] | None = None, seed: int | None = None) -> Policy:
    """Build a policy from its kind, number of arms, hyper-parameters and seed.

    Raises
    ------
    ValueError
        Naming the field, for an unknown kind, an unknown parameter or an invalid value.
    """
    cls = policy_class(kind)
    params = dict(params or {})
    unknown = set(params) - set(cls.param_names())
    if unknown:
        name = sorted(unknown)[0]
        valid = ", ".join(p for p in cls.param_names() if p != "seed")
        raise ValueError(f"params.{name}: unknown parameter for {kind}; expected one of {valid}")
    if seed is not None:
        params["seed"] = seed
    return cls(n_arms, **params)


def policy_from_state(state: Mapping[str, Any]) -> Policy:
    """Rebuild a policy saved with :meth:`Policy.get_state`; errors name the field."""
    if not isinstance(state, Mapping):
        raise ValueError("state: must be a JSON object")
    return policy_class(str(state.get("kind"))).from_state(state)


__all__ = [
    "PAPER_POLICIES",
    "POLICIES",
    "UCB1",
    "ABTest",
    "DiscountedThompson",
    "EpsilonGreedy",
    "Naive",
    "Policy",
    "SlidingWindowUCB",
    "Thompson",
    "ValidationBest",
    "make_policy",
    "policy_class",
    "policy_from_state",
]
