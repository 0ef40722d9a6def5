"""The contract every deployment strategy implements.

A policy is a small object in the style of a scikit-learn estimator: hyper-parameters are
set in ``__init__`` and never change afterwards (except a per-arm list that grows when an
arm is added), learned state lives in attributes whose names end in ``_``, and the whole
object round-trips through :meth:`Policy.get_state` / :func:`policies.policy_from_state` as
plain JSON types.

Exactness of batch updates
--------------------------
mabdash rebuilds every experiment's policy state from its reward ledger and expects the
result to equal the live state bit for bit, whatever batches the live pipeline happened to
apply. So every update is defined reward by reward, in ledger order, and the vectorised
code performs the same floating-point operations in the same order: sums use
``np.add.at`` (an unbuffered, in-order accumulation), never a pairwise ``np.sum`` followed
by a single addition.
"""

from __future__ import annotations

import inspect
import math
from bisect import bisect_right
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, ClassVar, overload

import numpy as np

from policies._checks import (
    check_arm_index,
    check_finite_float,
    check_seed,
    state_array,
    state_bool_array,
    state_int,
)

#: Default number of seeded Monte Carlo draws used to estimate probabilities of being best.
DEFAULT_N_DRAWS = 4096
#: Default exploration floor: every active arm is served at least this share of traffic,
#: so every logged propensity is positive and off-policy evaluation stays possible.
DEFAULT_MIN_SHARE = 0.01


def normal_quantile(level: float) -> float:
    """Return the two-sided standard-normal critical value for a confidence ``level``.

    Parameters
    ----------
    level : float
        Confidence level in (0, 1), for example 0.95.

    Returns
    -------
    float
        ``z`` such that ``P(|Z| <= z) = level`` for a standard normal ``Z``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def split_ties(scores: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Put all probability on the best active arms, split evenly between ties.

    Parameters
    ----------
    scores : ndarray of shape (n_arms,)
        Higher is better; ``+inf`` is allowed (an arm that must be tried first).
    active : ndarray of bool, shape (n_arms,)
        Arms that may receive traffic; at least one must be True.

    Returns
    -------
    ndarray of shape (n_arms,)
        A probability vector that is zero on inactive arms.
    """
    masked = np.where(active, scores, -np.inf)
    best = masked == masked.max()
    best &= active
    return np.asarray(best / best.sum(), dtype=np.float64)


class Policy:
    """Base class of all strategies; see the module docstring for the contract.

    Parameters
    ----------
    n_arms : int
        Number of arms (model versions) at construction; :meth:`add_arm` adds more.
    min_share : float, default 0.01
        Exploration floor: every active arm gets at least this share of traffic (at most
        ``1 / active arms``); the strategy's own allocation fills the rest. 0 turns the
        floor off — then an arm may get propensity 0, and no off-policy evaluation of
        other policies is possible from this experiment's log.
    seed : int or None, default None
        Seeds the policy's own randomness (Monte Carlo estimates). ``None`` means 0, so
        two policies built with the same arguments always agree.

    Attributes
    ----------
    counts_ : ndarray of int64, shape (n_arms,)
        Number of rewards observed per arm.
    sums_ : ndarray of float64, shape (n_arms,)
        Sum of rewards per arm, accumulated in arrival order.
    sumsq_ : ndarray of float64, shape (n_arms,)
        Sum of squared rewards per arm, accumulated in arrival order.
    active_ : ndarray of bool, shape (n_arms,)
        Arms that may receive traffic. Excluded arms (rolled back, paused) keep learning
        from late rewards but get no allocation.
    """

    kind: ClassVar[str] = ""
    #: Extra learned attributes saved in the state, name -> "arm_float" | "arm_int" | "int"
    #: | "float_list" | "int_list". Per-arm arrays grow with ``add_arm``.
    extra_state: ClassVar[dict[str, str]] = {}
    #: Hyper-parameters that hold one value per arm, mapped to the ``add_arm`` keyword
    #: that supplies the new arm's value and its default (``None``: required).
    per_arm_params: ClassVar[dict[str, tuple[str, float | None]]] = {}

    def __init__(self, n_arms: int, *, min_share: float = DEFAULT_MIN_SHARE, seed: int | None = None) -> None:
        if isinstance(n_arms, bool) or not isinstance(n_arms, (int, np.integer)) or n_arms < 1:
            raise ValueError(f"n_arms: must be a positive integer, got {n_arms!r}")
        self.n_arms = int(n_arms)
        self.min_share = check_finite_float("min_share", min_share, low=0.0, high=0.5)
        self.seed = check_seed(seed)
        self.counts_ = np.zeros(self.n_arms, dtype=np.int64)
        self.sums_ = np.zeros(self.n_arms)
        self.sumsq_ = np.zeros(self.n_arms)
        self.active_ = np.ones(self.n_arms, dtype=bool)
        self._init_extra_state()
        self._cdf: np.ndarray | None = None
        self._cdf_list: list[float] = []
        self._allocation: np.ndarray | None = None

    # ------------------------------------------------------------------ parameters
    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor's hyper-parameters (everything except ``n_arms``)."""
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name not in ("self", "n_arms")]

    def get_params(self) -> dict[str, Any]:
        """Return the hyper-parameters as plain JSON types, like scikit-learn's ``get_params``."""
        params = {}
        for name in self.param_names():
            value = getattr(self, name)
            params[name] = list(value) if isinstance(value, (list, tuple, np.ndarray)) else value
        return params

    # ------------------------------------------------------------------ learning
    @property
    def n_observations(self) -> int:
        """Total number of rewards learned from, over all arms."""
        return int(self.counts_.sum())

    def update(self, arms: Any, rewards: Any) -> None:
        """Learn from a batch of rewards, in order.

        Parameters
        ----------
        arms : array-like of int, shape (n,)
            The arm each reward belongs to.
        rewards : array-like of float, shape (n,)
            Reward values; finite, and within the range the policy accepts.

        Raises
        ------
        ValueError
            If the arrays differ in length, an arm index is out of range or a reward is
            not finite or out of range. Nothing is learned from a rejected batch.
        """
        arms_arr, rewards_arr = self._check_batch(arms, rewards)
        if arms_arr.size == 0:
            return
        start = self.n_observations
        done = 0
        # Some strategies act at fixed global observation counts (an A/B checkpoint, a
        # rescaling epoch); splitting the batch there keeps batch == one-by-one exactly.
        for cut in self._breakpoints(start, arms_arr.size):
            self._apply(arms_arr[done:cut], rewards_arr[done:cut], start + done)
            self._on_breakpoint(start + cut)
            done = cut
        if done < arms_arr.size:
            self._apply(arms_arr[done:], rewards_arr[done:], start + done)
        self._invalidate()

    def _apply(self, arms: np.ndarray, rewards: np.ndarray, start: int) -> None:
        self._update_extra(arms, rewards, start)
        self.counts_ += np.bincount(arms, minlength=self.n_arms)
        np.add.at(self.sums_, arms, rewards)
        np.add.at(self.sumsq_, arms, rewards * rewards)

    def _breakpoints(self, start: int, size: int) -> list[int]:
        """Hook: positions ``p`` in ``(0, size]`` after which :meth:`_on_breakpoint` runs.

        ``start`` is the number of observations before the batch.
        """
        return []

    def _on_breakpoint(self, n_observations: int) -> None:
        """Hook: called once ``n_observations`` rewards in total have been applied."""

    def _check_batch(self, arms: Any, rewards: Any) -> tuple[np.ndarray, np.ndarray]:
        arms_arr = np.asarray(arms)
        rewards_arr = np.asarray(rewards, dtype=np.float64)
        if arms_arr.ndim != 1 or rewards_arr.ndim != 1:
            raise ValueError("arms, rewards: must be one-dimensional arrays")
        if arms_arr.shape != rewards_arr.shape:
            raise ValueError(f"rewards: length {rewards_arr.size} does not match arms length {arms_arr.size}")
        if arms_arr.size == 0:
            return arms_arr.astype(np.int64), rewards_arr
        if arms_arr.dtype.kind not in "iu":
            raise ValueError(f"arms: must be integers, got dtype {arms_arr.dtype}")
        arms_arr = arms_arr.astype(np.int64, copy=False)
        if arms_arr.min() < 0 or arms_arr.max() >= self.n_arms:
            raise ValueError(f"arms: every index must be in [0, {self.n_arms})")
        if not np.isfinite(rewards_arr).all():
            raise ValueError("rewards: must be finite (no NaN or infinity)")
        self._check_reward_range(rewards_arr)
        return arms_arr, rewards_arr

    def _check_reward_range(self, rewards: np.ndarray) -> None:
        """Hook: policies that need bounded rewards raise ``ValueError`` here."""

    def _init_extra_state(self) -> None:
        for name, kind in self.extra_state.items():
            if kind == "arm_float":
                setattr(self, name, np.zeros(self.n_arms))
            elif kind == "arm_int":
                setattr(self, name, np.zeros(self.n_arms, dtype=np.int64))
            elif kind == "int":
                setattr(self, name, -1)
            elif kind == "float_list":
                setattr(self, name, np.zeros(0))
            elif kind == "int_list":
                setattr(self, name, np.zeros(0, dtype=np.int64))

    def _update_extra(self, arms: np.ndarray, rewards: np.ndarray, start: int) -> None:
        """Hook for learned state beyond the cumulative sums.

        ``start`` is the number of observations before this batch, so position ``i`` of
        the batch is global observation ``start + i``.
        """

    def _invalidate(self) -> None:
        self._allocation = None
        self._cdf = None

    # ------------------------------------------------------------------ evidence
    def evidence(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the per-arm (count, sum, sum of squares) that the decision rule uses.

        Stationary policies use everything ever observed; drift-aware variants override
        this with discounted or windowed statistics, and inherit everything else.
        """
        return self.counts_.astype(np.float64), self.sums_, self.sumsq_

    def expected_rewards(self) -> np.ndarray:
        """Estimated mean reward per arm as the decision rule sees it.

        Returns
        -------
        ndarray of shape (n_arms,)
            The empirical mean of :meth:`evidence`; NaN for an arm without data.
        """
        counts, sums, _ = self.evidence()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)

    def belief(self, level: float = 0.95) -> dict[str, Any]:
        """Describe the current belief about each arm's mean, for charts and tables.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the interval.

        Returns
        -------
        dict
            ``{"kind": "interval", "mean", "lower", "upper"}`` with arrays of shape
            (n_arms,): a normal-approximation confidence interval ``mean ± z·s/√n`` using
            the sample standard deviation ``s``. Bounds are NaN for arms with fewer than
            two observations. Bayesian policies return their posterior instead.
        """
        counts, _, sumsq = self.evidence()
        mean = self.expected_rewards()
        z = normal_quantile(level)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.maximum(sumsq - counts * mean * mean, 0.0) / (counts - 1.0)
            half = z * np.sqrt(var / counts)
        half = np.where(counts >= 2, half, np.nan)
        return {"kind": "interval", "mean": mean, "lower": mean - half, "upper": mean + half}

    def probability_best(self, n_draws: int = DEFAULT_N_DRAWS) -> np.ndarray:
        """Estimate each active arm's probability of having the highest mean reward.

        The default uses a normal approximation of each arm's mean (``N(mean, s²/n)``)
        with ``n_draws`` seeded Monte Carlo draws; arms with fewer than two observations
        share no probability unless no arm has two, in which case the active arms share
        it equally. Bayesian policies override this with their posterior.

        Returns
        -------
        ndarray of shape (n_arms,)
            Non-negative, sums to one, zero on inactive arms.
        """
        counts, _, _ = self.evidence()
        belief = self.belief()
        known = self.active_ & (counts >= 2)
        if not known.any():
            return np.asarray(self.active_ / self.active_.sum(), dtype=np.float64)
        z = normal_quantile(0.95)
        scale = np.where(known, (belief["upper"] - belief["mean"]) / z, 0.0)
        loc = np.where(known, belief["mean"], 0.0)
        rng = np.random.default_rng(self.seed)
        draws = loc + scale * rng.standard_normal((n_draws, self.n_arms))
        return _argmax_frequencies(draws, known)

    # ------------------------------------------------------------------ serving
    def allocation(self) -> np.ndarray:
        """Return the probability with which each arm would be served now.

        The strategy's own allocation, mixed with the exploration floor: with ``k``
        active arms and ``f = min(min_share, 1/k)``, each active arm gets
        ``f + (1 − k f) · own share``.

        Returns
        -------
        ndarray of shape (n_arms,)
            Non-negative, sums to one, zero on inactive arms, at least ``f`` on active
            arms. Cached until the next update or change of the active set; treat it as
            read-only.
        """
        if self._allocation is None:
            own = np.asarray(self._allocation_over_active(), dtype=np.float64)
            own = np.where(self.active_, own, 0.0)
            own = own / own.sum()
            active = int(self.active_.sum())
            floor = min(self.min_share, 1.0 / active)
            self._allocation = np.where(self.active_, floor + (1.0 - active * floor) * own, 0.0)
        return self._allocation

    def _allocation_over_active(self) -> np.ndarray:
        raise NotImplementedError

    @overload
    def choose(self, rng: np.random.Generator, size: None = None) -> int: ...

    @overload
    def choose(self, rng: np.random.Generator, size: int) -> np.ndarray: ...

    def choose(self, rng: np.random.Generator, size: int | None = None) -> int | np.ndarray:
        """Draw arms with the probabilities of :meth:`allocation`.

        Parameters
        ----------
        rng : numpy.random.Generator
            The caller's random generator (decisions are the caller's randomness, not the
            policy's).
        size : int or None, default None
            ``None`` draws one arm and returns an ``int``; otherwise an int64 array.

        Returns
        -------
        int or ndarray of int64
        """
        if self._cdf is None:
            cdf = np.cumsum(self.allocation())
            # Past the last arm with positive probability the CDF is +inf, so rounding in
            # the cumulative sum can never select a zero-probability arm or run off the end.
            cdf[int(np.flatnonzero(self.allocation() > 0)[-1]) :] = np.inf
            self._cdf = cdf
            self._cdf_list = cdf.tolist()
        if size is None:
            # bisect on a list beats numpy for one draw (the serving hot path).
            return bisect_right(self._cdf_list, rng.random())
        picks = np.searchsorted(self._cdf, rng.random(size), side="right")
        return picks.astype(np.int64, copy=False)

    # ------------------------------------------------------------------ arms
    def exclude(self, arm: int) -> None:
        """Stop serving ``arm`` (rolled back or paused); it still learns from late rewards.

        Raises
        ------
        ValueError
            If ``arm`` is out of range or is the last active arm.
        """
        arm = check_arm_index(arm, self.n_arms)
        if self.active_[arm] and self.active_.sum() == 1:
            raise ValueError(f"arm: cannot exclude arm {arm}, it is the last active arm")
        self.active_[arm] = False
        self._invalidate()

    def include(self, arm: int) -> None:
        """Re-admit an excluded arm, with everything it learned before."""
        arm = check_arm_index(arm, self.n_arms)
        self.active_[arm] = True
        self._invalidate()

    def add_arm(self, **arm_params: Any) -> int:
        """Add a new arm (a model version joins the experiment) and return its index.

        The new arm starts with no observations; what that means for its allocation is
        each strategy's documented prior. Strategies with per-arm hyper-parameters require
        them as keyword arguments (``ValidationBest.add_arm(score=0.83)``).
        """
        keywords = {keyword: default for keyword, default in self.per_arm_params.values()}
        unknown = set(arm_params) - set(keywords)
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: not a per-arm parameter of {self.kind}")
        new_values = {}
        for param, (keyword, default) in self.per_arm_params.items():
            value = arm_params.get(keyword, default)
            if value is None:
                raise ValueError(f"{keyword}: required when adding an arm to {self.kind}")
            new_values[param] = self._check_per_arm_value(keyword, value)
        for param, value in new_values.items():
            setattr(self, param, [*getattr(self, param), value])
        self.n_arms += 1
        self.counts_ = np.append(self.counts_, 0)
        self.sums_ = np.append(self.sums_, 0.0)
        self.sumsq_ = np.append(self.sumsq_, 0.0)
        self.active_ = np.append(self.active_, True)
        for name, kind in self.extra_state.items():
            if kind in ("arm_float", "arm_int"):
                setattr(self, name, np.append(getattr(self, name), 0))
        self._invalidate()
        return self.n_arms - 1

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Return the complete policy as plain JSON types (lists, floats, ints, bools).

        ``policies.policy_from_state(policy.get_state())`` rebuilds an identical policy.
        """
        state: dict[str, Any] = {
            "kind": self.kind,
            "n_arms": self.n_arms,
            "params": self.get_params(),
            "active": self.active_.tolist(),
            "counts": self.counts_.tolist(),
            "sums": self.sums_.tolist(),
            "sumsq": self.sumsq_.tolist(),
        }
        for name in self.extra_state:
            value = getattr(self, name)
            state[name.rstrip("_")] = value.tolist() if isinstance(value, np.ndarray) else value
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Policy:
        """Rebuild a policy from :meth:`get_state` output, validating every field.

        Raises
        ------
        ValueError
            Naming the field, for a missing field, a wrong shape, NaN or infinity, a
            negative count or an unknown parameter.
        """
        if not isinstance(state, Mapping):
            raise ValueError("state: must be a JSON object")
        n_arms = state_int(state, "n_arms", minimum=1)
        params = state.get("params")
        if not isinstance(params, Mapping):
            raise ValueError("params: must be a JSON object")
        unknown = set(params) - set(cls.param_names())
        if unknown:
            raise ValueError(f"params.{sorted(unknown)[0]}: unknown parameter for {cls.kind}")
        policy = cls(n_arms, **params)
        policy.active_ = state_bool_array(state, "active", n_arms)
        policy.counts_ = state_array(state, "counts", n_arms, integer=True)
        policy.sums_ = state_array(state, "sums", n_arms, nonnegative=False)
        policy.sumsq_ = state_array(state, "sumsq", n_arms)
        if not policy.active_.any():
            raise ValueError("active: at least one arm must be active")
        for name, kind in cls.extra_state.items():
            key = name.rstrip("_")
            value: np.ndarray | int
            if kind == "arm_float":
                value = state_array(state, key, n_arms, nonnegative=False)
            elif kind == "arm_int":
                value = state_array(state, key, n_arms, integer=True)
            elif kind == "int":
                value = state_int(state, key, minimum=-1)
            elif kind == "float_list":
                value = state_array(state, key, None, nonnegative=False)
            else:
                value = state_array(state, key, None, integer=True)
            setattr(policy, name, value)
        policy._check_evidence()
        policy._check_loaded_state()
        return policy

    def _check_evidence(self) -> None:
        """Reject cumulative sums no sequence of rewards could produce."""
        tolerance = 1e-9 * np.maximum(1.0, np.abs(self.sums_) + self.sumsq_)
        for arm in range(self.n_arms):
            count, total, squares = self.counts_[arm], self.sums_[arm], self.sumsq_[arm]
            if count == 0 and (total != 0.0 or squares != 0.0):
                raise ValueError(f"sums: arm {arm} has no rewards, so its sums must be 0")
            if count > 0 and squares * count < total * total - tolerance[arm] * count:
                raise ValueError(f"sumsq: arm {arm}'s sum of squares is below sums²/counts, which no rewards give")
        self._check_reward_bounds()

    def _check_reward_bounds(self) -> None:
        """Hook: policies that need rewards in [0, 1] check their sums fit."""

    def _check_per_arm_value(self, keyword: str, value: Any) -> float:
        """Hook: validate a per-arm hyper-parameter value given to ``add_arm``."""
        return check_finite_float(keyword, value)

    def _check_loaded_state(self) -> None:
        """Hook: cross-field checks after loading a state."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}(n_arms={self.n_arms}, {params})"


def _argmax_frequencies(draws: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Share of rows in which each eligible column holds the maximum."""
    masked = np.where(eligible, draws, -np.inf)
    winners = np.argmax(masked, axis=1)
    return np.asarray(np.bincount(winners, minlength=draws.shape[1]) / draws.shape[0], dtype=np.float64)


def hoeffding_bound(n_draws: int, n_arms: int, confidence: float = 0.99) -> float:
    """Bound on the Monte Carlo error of every arm's probability-of-best estimate at once.

    With probability ``confidence``, each of the ``n_arms`` estimates made from
    ``n_draws`` independent draws is within the returned distance of its true value
    (Hoeffding's inequality with a union bound over the arms).
    """
    return math.sqrt(math.log(2 * n_arms / (1 - confidence)) / (2 * n_draws))
