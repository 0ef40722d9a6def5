"""Change detection on one arm's rewards: has its mean *dropped* against its own history?

The detector is a one-sided generalised likelihood ratio (GLR) test for a single change
point, with the Bernoulli likelihood (valid for any rewards in [0, 1]: the Bernoulli
log-likelihood ratio is a supermartingale for every distribution on [0, 1] with the null
mean, which makes this test conservative — never anti-conservative — for rewards that are
not 0/1). For every candidate change point ``s`` it compares the rewards before ``s`` (the
*reference*: the arm's own healthy history, frozen at ``s``) with the rewards after it:

    G(s) = n₁ · kl(m₁, m) + n₂ · kl(m₂, m)      when m₂ < m₁ (a drop), else 0

where ``m₁``, ``m₂`` and ``m`` are the means before, after and overall and ``kl`` is the
Bernoulli Kullback–Leibler divergence; it alarms when ``max_s G(s) ≥ threshold``. This is
the Bernoulli GLR of Besson, Kaufmann, Maillard and Seznec (2022), "Efficient
change-point detection for tackling piecewise-stationary bandits", JMLR 23(77), restricted
to drops. Because both the reference and the recent mean are estimated, it needs no
pessimistic guess of the healthy level: a short history (a model that breaks after 200
rewards) only makes the evidence weaker, never invalid.

To keep the state small, candidate change points are block boundaries (every
``block`` rewards) within the last ``window`` rewards; older rewards form the reference
only. The state of an arm is the reference totals and the block sums of the window —
``window / block`` numbers — and the test is evaluated at every block end, so any
batching of the same stream gives the same alarms.

The default threshold was calibrated by simulation (``python -m bench.guardrails
--calibrate``): on stationary Bernoulli streams (means 0.05–0.95) checked at every block
end, at most 0.5 % of arms alarm within 20,000 rewards. Like every change detector with a
constant threshold its false alarms accumulate with time (about one per
``20,000 / 0.005`` = 4 million rewards of a stationary arm); the anytime-valid rule in
``policies.detectors`` has no such horizon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int

#: Rewards per block: change points are considered at block boundaries.
BLOCK = 20
#: Candidate change points reach back this many rewards (a multiple of ``BLOCK``).
WINDOW = 2000
#: Alarm threshold on ``max G(s)``, calibrated as described in the module docstring.
THRESHOLD = 12.5
#: No alarm with fewer reference rewards than this before the change point.
MIN_REFERENCE = 40

_EPS = 1e-12


@dataclass
class ChangeState:
    """Per-stream detector state (arrays with a leading stream axis, shape ``(S, …)``).

    Attributes
    ----------
    reference_count, reference_sum : rewards older than the window (always reference).
    blocks : the sums of the window's complete blocks, oldest first, shape ``(S, L)``;
        only the last ``filled`` are in use.
    filled : complete blocks in the window (0 … L).
    partial_count, partial_sum : the block being filled.
    """

    reference_count: np.ndarray
    reference_sum: np.ndarray
    blocks: np.ndarray
    filled: np.ndarray
    partial_count: np.ndarray
    partial_sum: np.ndarray
    block: int = BLOCK

    @classmethod
    def empty(cls, streams: int = 1, window: int = WINDOW, block: int = BLOCK) -> ChangeState:
        """Fresh state for ``streams`` streams; ``window`` must be a multiple of ``block``."""
        if block < 1 or window < block or window % block:
            raise ValueError(f"window: must be a positive multiple of the block size {block}")
        zeros = np.zeros(streams)
        blocks = np.zeros((streams, window // block))
        return cls(zeros.copy(), zeros.copy(), blocks, zeros.copy(), zeros.copy(), zeros.copy(), block)

    @property
    def count(self) -> np.ndarray:
        """Rewards seen per stream."""
        return np.asarray(self.reference_count + self.filled * self.block + self.partial_count)

    def as_dict(self) -> dict[str, Any]:
        """A one-stream state as plain JSON (the window's blocks as a list, newest last)."""
        if self.reference_count.size != 1:
            raise ValueError("as_dict: only a one-stream state is stored")
        filled = int(self.filled[0])
        return {
            "reference_count": int(self.reference_count[0]),
            "reference_sum": float(self.reference_sum[0]),
            "blocks": [float(v) for v in self.blocks[0, self.blocks.shape[1] - filled :]] if filled else [],
            "partial_count": int(self.partial_count[0]),
            "partial_sum": float(self.partial_sum[0]),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, window: int = WINDOW, block: int = BLOCK) -> ChangeState:
        """Load a one-stream state; ``None`` or ``{}`` is a fresh one. Errors name the field."""
        state = cls.empty(1, window, block)
        if not data:
            return state
        reference_count = check_int("reference_count", data.get("reference_count"), minimum=0)
        reference_sum = check_finite_float("reference_sum", data.get("reference_sum"), low=0.0, high=reference_count)
        partial_count = check_int("partial_count", data.get("partial_count"), minimum=0)
        if partial_count >= block:
            raise ValueError(f"partial_count: must be below the block size {block}")
        partial_sum = check_finite_float("partial_sum", data.get("partial_sum"), low=0.0, high=partial_count)
        raw_blocks = data.get("blocks")
        if not isinstance(raw_blocks, list) or len(raw_blocks) > window // block:
            raise ValueError(f"blocks: must be a list of at most {window // block} block sums")
        values = [check_finite_float("blocks", v, low=0.0, high=block) for v in raw_blocks]
        state.reference_count[0], state.reference_sum[0] = reference_count, reference_sum
        state.partial_count[0], state.partial_sum[0] = partial_count, partial_sum
        state.filled[0] = len(values)
        if values:
            state.blocks[0, state.blocks.shape[1] - len(values) :] = values
        return state


@dataclass(frozen=True)
class ChangeResult:
    """What one update found, per stream.

    Attributes
    ----------
    alarm_at : reward count (1-based, in the stream) at the first alarm in this update, or 0.
    statistic : ``max_s G(s)`` at the first alarm, else the largest seen in this update.
    reference_mean, reference_count, recent_mean, recent_count : before and after the
        strongest candidate change point.
    """

    alarm_at: np.ndarray
    statistic: np.ndarray
    reference_mean: np.ndarray
    reference_count: np.ndarray
    recent_mean: np.ndarray
    recent_count: np.ndarray


def bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(Bernoulli(p) ‖ Bernoulli(q)), elementwise, with 0·log 0 = 0."""
    q = np.clip(q, _EPS, 1.0 - _EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        # At p = 0 (or 1) the first (second) log is finite and its factor is 0, so the
        # term is 0 without a branch: this runs at every block end of every arm.
        first = p * np.log(np.maximum(p, _EPS) / q)
        second = (1 - p) * np.log(np.maximum(1 - p, _EPS) / (1 - q))
    return np.asarray(first + second)


def expected_delay(
    before: float, after: float, healthy: int, *, threshold: float = THRESHOLD, window: int = WINDOW
) -> int | None:
    """Bad rewards the detector needs when every mean sits at its expected value.

    For an arm whose mean drops from ``before`` to ``after`` after ``healthy`` rewards: the
    fewest rewards ``n₂`` after the change for which the statistic at the true change point,
    ``healthy·kl(before, m) + n₂·kl(after, m)`` with ``m`` the overall mean, reaches
    ``threshold``. None when no ``n₂`` within ``window`` (the reach of candidate change
    points) does. It is a noise-free yardstick, not a guarantee: with noise some streams
    alarm earlier and some later. Its limit as ``n₂`` grows is ``healthy·kl(before, after)``,
    so a history shorter than ``threshold / kl(before, after)`` rewards cannot show a drop of
    that size at this threshold, however long the bad period lasts.
    """
    if not 0.0 <= after < before <= 1.0:
        raise ValueError(f"after: must be below before, both in [0, 1], got {before} → {after}")
    if healthy < 1 or window < 1:
        raise ValueError("healthy, window: must be at least 1")
    bad = np.arange(1, window + 1, dtype=float)
    overall = (healthy * before + bad * after) / (healthy + bad)
    statistic = healthy * bernoulli_kl(np.full_like(bad, before), overall) + bad * bernoulli_kl(
        np.full_like(bad, after), overall
    )
    reached = np.flatnonzero(statistic >= threshold)
    return int(bad[reached[0]]) if reached.size else None


def change_update(
    state: ChangeState,
    rewards: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    min_reference: int = MIN_REFERENCE,
) -> tuple[ChangeState, ChangeResult]:
    """Feed ``rewards`` of shape ``(S, b)`` (in order) and test at every block end.

    All streams must be at the same position within a block (true for one stream, and for
    the benchmark's lock-step streams). Every block end of the batch is tested at once, on
    arrays of shape ``(S, block ends, window blocks)``. The state is updated in place.
    """
    x = np.asarray(rewards, dtype=float)
    block = state.block
    streams = state.reference_count.size
    if x.ndim != 2 or x.shape[0] != streams:
        raise ValueError("rewards: must have shape (streams, batch)")
    if streams and np.ptp(state.partial_count) != 0:
        raise ValueError("partial_count: streams must be at the same position within a block")
    partial = int(state.partial_count[0]) if streams else 0
    complete = (partial + x.shape[1]) // block  # block ends in this batch
    if complete == 0:
        state.partial_sum = _added(state.partial_sum, x)
        state.partial_count = state.partial_count + x.shape[1]
        return state, _no_result(streams)
    cut = complete * block - partial  # rewards that complete blocks
    first = _added(state.partial_sum, x[:, : block - partial])  # the open block, closed
    rest = x[:, block - partial : cut].reshape(streams, complete - 1, block)
    new_blocks = np.concatenate([first[:, None], _block_sums(rest)], axis=1)  # (S, M)
    window = state.blocks.shape[1]
    extended = np.concatenate([state.blocks, new_blocks], axis=1)  # (S, L + M)
    views = np.lib.stride_tricks.sliding_window_view(extended, window, axis=1)[:, 1:]  # (S, M, L)
    ends = np.arange(1, complete + 1)
    # At block end j the first j slots of ``extended`` have left the window: the leading
    # empty slots of a window not yet full (zeros), then real blocks into the reference.
    slid = np.maximum(0, state.filled[:, None] + ends[None, :] - window)
    leaving = _running(state.reference_sum, extended[:, :complete])
    reference_count = state.reference_count[:, None] + block * slid
    reference_sum = np.where(slid > 0, leaving, state.reference_sum[:, None])
    filled = np.minimum(state.filled[:, None] + ends[None, :], window)
    statistic, ref_mean, new_mean, new_count = _glr(views, reference_count, reference_sum, filled, min_reference, block)
    counts = reference_count + filled * block  # rewards seen at each block end
    fired = statistic >= threshold
    has_alarm = fired.any(axis=1)
    first_alarm = np.argmax(fired, axis=1)
    strongest = np.argmax(statistic, axis=1)
    pick = np.where(has_alarm, first_alarm, strongest)  # the alarm's evidence, else the strongest
    rows = np.arange(streams)
    result = ChangeResult(
        alarm_at=np.where(has_alarm, counts[rows, first_alarm], 0).astype(np.int64),
        statistic=statistic[rows, pick],
        reference_mean=ref_mean[rows, pick],
        reference_count=(counts[rows, pick] - new_count[rows, pick]).astype(np.int64),
        recent_mean=new_mean[rows, pick],
        recent_count=np.where(statistic[rows, pick] > 0, new_count[rows, pick], 0).astype(np.int64),
    )
    state.blocks = extended[:, -window:].copy()
    state.reference_count = reference_count[:, -1].astype(float)
    state.reference_sum = reference_sum[:, -1]
    state.filled = filled[:, -1].astype(float)
    remainder = x[:, cut:]
    state.partial_sum = _added(np.zeros(streams), remainder)
    state.partial_count = np.full(streams, float(remainder.shape[1]))
    return state, result


def _running(initial: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``initial`` plus each prefix of the rows of ``values``, added left to right."""
    return np.cumsum(np.concatenate([initial[:, None], values], axis=1), axis=1)[:, 1:]


def _added(initial: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``initial`` plus the rows of ``values``, added left to right (the same totals
    whatever the batching)."""
    return np.cumsum(np.concatenate([initial[:, None], values], axis=1), axis=1)[:, -1]


def _block_sums(values: np.ndarray) -> np.ndarray:
    """Sums of the blocks of ``values`` (S, M, block), each added left to right."""
    if values.shape[1] == 0:
        return np.zeros(values.shape[:2])
    return np.cumsum(values, axis=2)[:, :, -1]


def _no_result(streams: int) -> ChangeResult:
    zeros = np.zeros(streams, dtype=np.int64)
    nan = np.full(streams, np.nan)
    return ChangeResult(zeros, np.zeros(streams), nan, zeros.copy(), nan.copy(), zeros.copy())


def _glr(
    windows: np.ndarray,
    reference_count: np.ndarray,
    reference_sum: np.ndarray,
    filled: np.ndarray,
    min_reference: int,
    block: int,
) -> tuple[np.ndarray, ...]:
    """``max_s G(s)`` at every block end: ``windows`` (S, M, L) holds the last L blocks at
    each of the M block ends (oldest first); returns (S, M) arrays of the statistic and the
    means and recent count at its argmax."""
    size = windows.shape[2]
    recent_sums = np.cumsum(windows[:, :, ::-1], axis=2)  # last 1, 2, … blocks
    recent_counts = block * np.arange(1, size + 1, dtype=float)[None, None, :]
    total_count = (reference_count + filled * block)[:, :, None]
    total_sum = reference_sum[:, :, None] + recent_sums[:, :, -1:]
    reference_counts = total_count - recent_counts
    usable = (np.arange(size)[None, None, :] < filled[:, :, None]) & (reference_counts >= min_reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_recent = recent_sums / recent_counts
        m_reference = (total_sum - recent_sums) / reference_counts
        m_all = total_sum / total_count
        g = reference_counts * bernoulli_kl(m_reference, m_all) + recent_counts * bernoulli_kl(m_recent, m_all)
    g = np.where(usable & (m_recent < m_reference), g, 0.0)
    at = np.argmax(g, axis=2)
    pick = at[:, :, None]
    return (
        np.take_along_axis(g, pick, axis=2)[:, :, 0],
        np.take_along_axis(m_reference, pick, axis=2)[:, :, 0],
        np.take_along_axis(m_recent, pick, axis=2)[:, :, 0],
        (block * (at + 1)).astype(np.int64),
    )
