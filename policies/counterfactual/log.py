"""The logged decisions an evaluation reads, and the estimates it returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from policies._checks import check_int

#: Below this effective sample size an estimate carries a warning.
MIN_ESS = 30.0
#: Below this many accepted decisions a replay estimate carries a warning.
MIN_ACCEPTED = 100


@dataclass(frozen=True)
class Log:
    """Logged decisions, in the order they were made (validated by :meth:`of`)."""

    arms: np.ndarray
    propensities: np.ndarray
    rewards: np.ndarray  # NaN where no reward arrived
    n_arms: int

    @classmethod
    def of(cls, arms: Any, propensities: Any, rewards: Any, n_arms: int) -> Log:
        """Check and build a log; ``ValueError`` names the field."""
        n_arms = check_int("n_arms", n_arms, minimum=1)
        arms_arr = np.asarray(arms)
        if arms_arr.ndim != 1:
            raise ValueError("arms: must be a one-dimensional array")
        if arms_arr.size and arms_arr.dtype.kind not in "iu":
            raise ValueError("arms: must be integers")
        arms_arr = arms_arr.astype(np.int64)
        if arms_arr.size and (arms_arr.min() < 0 or arms_arr.max() >= n_arms):
            raise ValueError(f"arms: every arm must be in [0, {n_arms})")
        p = np.asarray(propensities, dtype=float)
        r = np.asarray(rewards, dtype=float)
        if p.shape != arms_arr.shape or r.shape != arms_arr.shape:
            raise ValueError("propensities, rewards: must have one entry per decision")
        if p.size and (not np.isfinite(p).all() or p.min() <= 0.0 or p.max() > 1.0):
            raise ValueError("propensities: must be in (0, 1] (a zero propensity cannot be evaluated)")
        if np.isinf(r).any():
            raise ValueError("rewards: must be finite or NaN (no reward)")
        return cls(arms_arr, p, r, n_arms)

    @property
    def rewarded(self) -> np.ndarray:
        """Which decisions have a reward."""
        return np.asarray(~np.isnan(self.rewards))

    def served(self) -> np.ndarray:
        """Decisions per arm (with a reward)."""
        return np.asarray(np.bincount(self.arms[self.rewarded], minlength=self.n_arms))


@dataclass(frozen=True)
class Estimate:
    """One estimate of a target's mean reward per decision.

    ``value``, ``lower``, ``upper`` are None when the target cannot be evaluated (then
    ``warning`` says why); ``difference`` (and its interval) compares with the mean reward
    actually earned on the same decisions. ``support`` is the effective sample size
    (fixed targets) or the accepted decisions (replay). An interval with too few decisions to
    estimate its width (one) is unbounded: ``as_dict`` gives its ends as None (JSON has no
    infinity).
    """

    target: str
    method: str
    value: float | None
    lower: float | None
    upper: float | None
    difference: float | None
    difference_lower: float | None
    difference_upper: float | None
    support: float
    decisions: int
    warning: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {key: finite_or_none(value) for key, value in asdict(self).items()}


def finite_or_none(value: Any) -> Any:
    """A float that is not finite becomes None; anything else is returned as it is."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def normal_interval(terms: np.ndarray, z: float) -> tuple[float, float, float]:
    value = float(terms.mean())
    half = z * float(terms.std(ddof=1)) / math.sqrt(terms.size) if terms.size > 1 else math.inf
    return value, value - half, value + half


def unsupported_reason(target: np.ndarray, log: Log) -> str | None:
    never = [int(k) for k in np.flatnonzero((target > 0) & (log.served() == 0))]
    if never:
        listed = ", ".join(f"#{k}" for k in never)
        return f"cannot be evaluated: the log has no rewarded decision for arm {listed}"
    return None
