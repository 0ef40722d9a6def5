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

**The shortfall variant** (``ChangeState.empty(..., alternatives=True)``) adds to the
reference of every candidate change point ``s`` the *other active arms'* rewards received
since ``s`` — the same period as the arm's recent rewards. Its reference is then no longer
limited by the arm's own history: a model that breaks after 200 rewards is compared with
its own 200 and with everything the other models earned meanwhile, so it is caught about
as fast as one with a long history. The price is a different null hypothesis: the test
fires when the arm's recent mean is below the pooled mean of its own past and the others'
present, so, like the relative rule, it also rolls back an arm that is simply worse than
the others over the same period (not only one that changed). The other arms' rewards are
fed per batch (count and sum); a block's start is stamped with the others' totals at the
start of the batch in which its first reward came if that reward opened the batch, else at
the batch's end, so the others' rewards credited to "since ``s``" never precede ``s`` — nor
the arm's first reward after a time without traffic (in lock-step batches of one block, as
in the benchmark, they are exactly the same period).

The default threshold was calibrated by simulation (``bench.guardrails.calibrate``): on
stationary Bernoulli streams (means 0.05–0.95) checked at every block end, at most 0.5 % of
arms alarm within 20,000 rewards. Like every change detector with a
constant threshold its false alarms accumulate with time (about one per
``20,000 / 0.005`` = 4 million rewards of a stationary arm); the anytime-valid rule in
``policies.detectors`` has no such horizon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int, state_array

#: Rewards per block: change points are considered at block boundaries.
BLOCK = 20
#: Candidate change points reach back this many rewards (a multiple of ``BLOCK``).
WINDOW = 2000
#: Alarm threshold on ``max G(s)``, calibrated as described in the module docstring.
THRESHOLD = 12.5
#: No alarm with fewer reference rewards than this before the change point.
MIN_REFERENCE = 40
#: The shortfall variant's reach: a small drop (0.90 → 0.85) needs about 1,000–2,500 bad
#: rewards, all of them within reach of one candidate change point.
SHORTFALL_WINDOW = 5000

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
    others : the shortfall variant's record of the other arms, or None (see
        :class:`OthersRecord`).
    """

    reference_count: np.ndarray
    reference_sum: np.ndarray
    blocks: np.ndarray
    filled: np.ndarray
    partial_count: np.ndarray
    partial_sum: np.ndarray
    block: int = BLOCK
    others: OthersRecord | None = None

    @classmethod
    def empty(
        cls, streams: int = 1, window: int = WINDOW, block: int = BLOCK, *, alternatives: bool = False
    ) -> ChangeState:
        """Fresh state for ``streams`` streams; ``window`` must be a multiple of ``block``.
        ``alternatives``: the shortfall variant, whose reference includes the other arms'
        rewards over the same period."""
        if block < 1 or window < block or window % block:
            raise ValueError(f"window: must be a positive multiple of the block size {block}")
        zeros = np.zeros(streams)
        blocks = np.zeros((streams, window // block))
        others = OthersRecord.empty(streams, window // block) if alternatives else None
        return cls(zeros.copy(), zeros.copy(), blocks, zeros.copy(), zeros.copy(), zeros.copy(), block, others)

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
            **(self.others.as_dict(filled) if self.others is not None else {}),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, window: int = WINDOW, block: int = BLOCK, *, alternatives: bool = False
    ) -> ChangeState:
        """Load a one-stream state; ``None`` or ``{}`` is a fresh one. Errors name the field."""
        state = cls.empty(1, window, block, alternatives=alternatives)
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
        values = state_array(data, "blocks", None)
        if (values > block).any():
            raise ValueError(f"blocks: must be at most {block}, the block size")
        state.reference_count[0], state.reference_sum[0] = reference_count, reference_sum
        state.partial_count[0], state.partial_sum[0] = partial_count, partial_sum
        state.filled[0] = len(values)
        if len(values):
            state.blocks[0, state.blocks.shape[1] - len(values) :] = values
        if state.others is not None:
            state.others.load(data, len(values))
        return state


@dataclass
class OthersRecord:
    """The shortfall variant's record of the other arms' rewards, per stream.

    Attributes
    ----------
    count, sum : the other arms' rewards fed so far (running totals).
    open_count, open_sum : those totals when the open block started.
    start_count, start_sum : those totals when each window block started, shape ``(S, L)``,
        aligned with ``ChangeState.blocks``.
    """

    count: np.ndarray
    sum: np.ndarray
    open_count: np.ndarray
    open_sum: np.ndarray
    start_count: np.ndarray
    start_sum: np.ndarray

    @classmethod
    def empty(cls, streams: int, slots: int) -> OthersRecord:
        zeros = np.zeros(streams)
        starts = np.zeros((streams, slots))
        return cls(zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), starts, starts.copy())

    def as_dict(self, filled: int) -> dict[str, Any]:
        slots = self.start_count.shape[1]
        return {
            "others_count": int(self.count[0]),
            "others_sum": float(self.sum[0]),
            "others_open": [int(self.open_count[0]), float(self.open_sum[0])],
            "others_start_counts": [int(v) for v in self.start_count[0, slots - filled :]] if filled else [],
            "others_start_sums": [float(v) for v in self.start_sum[0, slots - filled :]] if filled else [],
        }

    def load(self, data: Mapping[str, Any], filled: int) -> None:
        """Fill a one-stream record from ``data``; one block start per block, in order."""
        count = check_int("others_count", data.get("others_count", 0), minimum=0)
        total = check_finite_float("others_sum", data.get("others_sum", 0.0), low=0.0, high=count)
        opened = data.get("others_open", [0, 0.0])
        if not isinstance(opened, list) or len(opened) != 2:
            raise ValueError("others_open: must be a [count, sum] pair")
        open_count = check_int("others_open", opened[0], minimum=0)
        open_sum = check_finite_float("others_open", opened[1], low=0.0, high=open_count)
        if open_count > count:
            raise ValueError(f"others_open: count must be at most others_count {count}")
        # Vectorised: a state holds 250 block starts and is loaded at every learning batch.
        counts = state_array(data, "others_start_counts", filled, integer=True)
        sums = state_array(data, "others_start_sums", filled)
        if (sums > counts).any():
            raise ValueError("others_start_sums: each must be at most its block's others_start_counts")
        # Running totals: from block to block, then the open block, then now, never down.
        for name, series in (
            ("others_start_counts", [*counts, open_count, count]),
            ("others_start_sums", [*sums, open_sum, total]),
        ):
            if (np.diff(series) < 0).any():
                raise ValueError(f"{name}: totals must not decrease from block to block")
        self.count[0], self.sum[0] = count, total
        self.open_count[0], self.open_sum[0] = open_count, open_sum
        slots = self.start_count.shape[1]
        self.start_count[0, slots - filled :] = counts
        self.start_sum[0, slots - filled :] = sums


@dataclass(frozen=True)
class ChangeResult:
    """What one update found, per stream.

    Attributes
    ----------
    alarm_at : reward count (1-based, in the stream) at the first alarm in this update, or 0.
    statistic : ``max_s G(s)`` at the first alarm, else the largest seen in this update.
    reference_mean, reference_count, recent_mean, recent_count : before and after the
        strongest candidate change point (``reference_mean`` pools the other arms' rewards
        since that point in the shortfall variant; ``reference_count`` is the arm's own).
    others_count : the other arms' rewards since that point (0 unless the shortfall variant).
    """

    alarm_at: np.ndarray
    statistic: np.ndarray
    reference_mean: np.ndarray
    reference_count: np.ndarray
    recent_mean: np.ndarray
    recent_count: np.ndarray
    others_count: np.ndarray


def bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(Bernoulli(p) ‖ Bernoulli(q)), elementwise, with 0·log 0 = 0."""
    q = np.clip(q, _EPS, 1.0 - _EPS)
    # At p = 0 (or 1) the first (second) log is finite and its factor is 0, so the term is 0
    # without a branch; with both arguments clipped no log sees 0 (a NaN mean, from an empty
    # group, stays NaN without a warning): this runs at every block end of every arm.
    first = p * np.log(np.maximum(p, _EPS) / q)
    second = (1 - p) * np.log(np.maximum(1 - p, _EPS) / (1 - q))
    return np.asarray(first + second)


def expected_delay(
    before: float,
    after: float,
    healthy: int,
    *,
    alternatives: float = 0.0,
    threshold: float = THRESHOLD,
    window: int = WINDOW,
) -> int | None:
    """Bad rewards the detector needs when every mean sits at its expected value.

    For an arm whose mean drops from ``before`` to ``after`` after ``healthy`` rewards: the
    fewest rewards ``n₂`` after the change for which the statistic at the true change point
    reaches ``threshold``. The reference is the ``healthy`` rewards plus, for the shortfall
    variant, ``alternatives · n₂`` rewards of other arms still at ``before`` over the same
    period (2 for two other arms served as often): with ``m`` the overall mean,
    ``(healthy + alternatives·n₂)·kl(before, m) + n₂·kl(after, m)``. None when no ``n₂``
    within ``window`` (the reach of candidate change points) does. It is a noise-free
    yardstick, not a guarantee: with noise some streams alarm earlier and some later.
    Without alternatives its limit as ``n₂`` grows is ``healthy·kl(before, after)``, so a
    history shorter than ``threshold / kl(before, after)`` rewards cannot show a drop of
    that size at this threshold, however long the bad period lasts.
    """
    if not 0.0 <= after < before <= 1.0:
        raise ValueError(f"after: must be below before, both in [0, 1], got {before} → {after}")
    if healthy < 1 or window < 1:
        raise ValueError("healthy, window: must be at least 1")
    if alternatives < 0:
        raise ValueError("alternatives: must be at least 0")
    bad = np.arange(1, window + 1, dtype=float)
    reference = healthy + alternatives * bad
    overall = (reference * before + bad * after) / (reference + bad)
    statistic = reference * bernoulli_kl(np.full_like(bad, before), overall) + bad * bernoulli_kl(
        np.full_like(bad, after), overall
    )
    reached = np.flatnonzero(statistic >= threshold)
    return int(bad[reached[0]]) if reached.size else None


def change_update(
    state: ChangeState,
    rewards: np.ndarray,
    *,
    others: tuple[np.ndarray, np.ndarray] | None = None,
    threshold: float = THRESHOLD,
    min_reference: int = MIN_REFERENCE,
) -> tuple[ChangeState, ChangeResult]:
    """Feed ``rewards`` of shape ``(S, b)`` (in order) and test at every block end.

    All streams must be at the same position within a block (true for one stream, and for
    the benchmark's lock-step streams). Every block end of the batch is tested at once, on
    arrays of shape ``(S, block ends, window blocks)``. The state is updated in place.
    ``others`` — for the shortfall variant only, and required there — is the other arms'
    rewards in the same batch: their count and sum per stream, each of shape ``(S,)``.
    """
    x = np.asarray(rewards, dtype=float)
    block = state.block
    streams = state.reference_count.size
    if x.ndim != 2 or x.shape[0] != streams:
        raise ValueError("rewards: must have shape (streams, batch)")
    if streams > 1 and np.ptp(state.partial_count) != 0:
        raise ValueError("partial_count: streams must be at the same position within a block")
    record = state.others
    if (record is None) != (others is None):
        raise ValueError("others: the other arms' (count, sum) are given for, and only for, a shortfall state")
    if record is not None and others is not None:
        others_count, others_sum = (np.asarray(v, dtype=float).reshape(streams) for v in others)
        if not (np.isfinite(others_sum).all() and (others_count >= 0).all()):
            raise ValueError("others: counts must be non-negative and sums finite")
        if ((others_sum < 0) | (others_sum > others_count)).any():
            raise ValueError("others: each sum must be within [0, count]")
        end_count, end_sum = record.count + others_count, record.sum + others_sum
    partial = int(state.partial_count[0]) if streams else 0
    if record is not None and partial == 0:
        # The open block has no reward yet: it opens with this batch (or a later one), so
        # the others' rewards before this batch are not "since" its start. (An arm that
        # served nothing for a while must not count what the others earned meanwhile.)
        record.open_count, record.open_sum = record.count.copy(), record.sum.copy()
    if x.shape[1] == 0:  # nothing of its own (an arm without traffic): only the others' totals move
        if record is not None:
            record.count, record.sum = end_count, end_sum
        return state, _no_result(streams)
    complete = (partial + x.shape[1]) // block  # block ends in this batch
    if complete == 0:
        state.partial_sum = _added(state.partial_sum, x)
        state.partial_count = state.partial_count + x.shape[1]
        if record is not None:  # an open block that has begun keeps its start
            record.count, record.sum = end_count, end_sum
        return state, _no_result(streams)
    cut = complete * block - partial  # rewards that complete blocks
    first = _added(state.partial_sum, x[:, : block - partial])  # the open block, closed
    rest = x[:, block - partial : cut].reshape(streams, complete - 1, block)
    new_blocks = np.concatenate([first[:, None], _block_sums(rest)], axis=1)  # (S, M)
    window = state.blocks.shape[1]
    extended = np.concatenate([state.blocks, new_blocks], axis=1)  # (S, L + M)
    # (S, M, L): the window at each block end (an index, cheaper than a strided view here).
    views = extended[:, np.arange(1, complete + 1)[:, None] + np.arange(window)[None, :]]
    ends = np.arange(1, complete + 1)
    # At block end j the first j slots of ``extended`` have left the window: the leading
    # empty slots of a window not yet full (zeros), then real blocks into the reference.
    slid = np.maximum(0, state.filled[:, None] + ends[None, :] - window)
    leaving = _running(state.reference_sum, extended[:, :complete])
    reference_count = state.reference_count[:, None] + block * slid
    reference_sum = np.where(slid > 0, leaving, state.reference_sum[:, None])
    filled = np.minimum(state.filled[:, None] + ends[None, :], window)
    tested = slice(None)  # every block end of the batch
    pooled: _Pooled | None = None
    if record is not None:
        # The first new block opened before this batch or with it (its start is recorded);
        # the others opened within the batch: stamped with its end, never before their start.
        def stamped(starts: np.ndarray, opened: np.ndarray, end: np.ndarray) -> np.ndarray:
            later = np.repeat(end[:, None], complete - 1, axis=1)
            return np.concatenate([starts, opened[:, None], later], axis=1)

        start_count = stamped(record.start_count, record.open_count, end_count)
        start_sum = stamped(record.start_sum, record.open_sum, end_sum)
        record.start_count, record.start_sum = start_count[:, -window:].copy(), start_sum[:, -window:].copy()
        record.count, record.sum = end_count, end_sum
        record.open_count, record.open_sum = end_count.copy(), end_sum.copy()
        # The other arms' rewards come per batch, so the block ends within one batch are
        # not separate looks at them: this variant is tested once, at the batch's last.
        tested = slice(-1, None)
        pooled = _Pooled(end_count, end_sum, record.start_count[:, None, :], record.start_sum[:, None, :])
    statistic, ref_mean, new_mean, new_count, extra_count = _glr(
        views[:, tested],
        reference_count[:, tested],
        reference_sum[:, tested],
        filled[:, tested],
        min_reference,
        block,
        pooled,
    )
    counts = (reference_count + filled * block)[:, tested]  # rewards seen at each tested block end
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
        others_count=np.where(statistic[rows, pick] > 0, extra_count[rows, pick], 0).astype(np.int64),
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
    return ChangeResult(zeros, np.zeros(streams), nan, zeros.copy(), nan.copy(), zeros.copy(), zeros.copy())


@dataclass(frozen=True)
class _Pooled:
    """The other arms' totals at the batch's end ``(S,)`` and at the start of each window
    block at the tested block end ``(S, 1, L)``, oldest block first."""

    end_count: np.ndarray
    end_sum: np.ndarray
    start_count: np.ndarray
    start_sum: np.ndarray


def _glr(
    windows: np.ndarray,
    reference_count: np.ndarray,
    reference_sum: np.ndarray,
    filled: np.ndarray,
    min_reference: int,
    block: int,
    pooled: _Pooled | None = None,
) -> tuple[np.ndarray, ...]:
    """``max_s G(s)`` at every block end: ``windows`` (S, M, L) holds the last L blocks at
    each of the M block ends (oldest first); returns (S, M) arrays of the statistic, the
    means and recent count at its argmax, and the other arms' rewards pooled there."""
    size = windows.shape[2]
    recent_sums = np.cumsum(windows[:, :, ::-1], axis=2)  # last 1, 2, … blocks
    recent_counts = block * np.arange(1, size + 1, dtype=float)[None, None, :]
    total_count = (reference_count + filled * block)[:, :, None]
    total_sum = reference_sum[:, :, None] + recent_sums[:, :, -1:]
    extra_count: np.ndarray | float = 0.0
    extra_sum: np.ndarray | float = 0.0
    if pooled is not None:  # the others' rewards since the start of the last 1, 2, … blocks
        extra_count = np.maximum(pooled.end_count[:, None, None] - pooled.start_count[:, :, ::-1], 0.0)
        extra_sum = np.maximum(pooled.end_sum[:, None, None] - pooled.start_sum[:, :, ::-1], 0.0)
    reference_counts = total_count - recent_counts + extra_count
    usable = (np.arange(size)[None, None, :] < filled[:, :, None]) & (reference_counts >= min_reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_recent = recent_sums / recent_counts
        m_reference = (total_sum - recent_sums + extra_sum) / reference_counts
        m_all = (total_sum + extra_sum) / (total_count + extra_count)
        g = reference_counts * bernoulli_kl(m_reference, m_all) + recent_counts * bernoulli_kl(m_recent, m_all)
    g = np.where(usable & (m_recent < m_reference), g, 0.0)
    at = np.argmax(g, axis=2)
    pick = (np.arange(at.shape[0])[:, None], np.arange(at.shape[1])[None, :], at)  # the strongest candidate
    extra_at = np.broadcast_to(extra_count, g.shape)[pick] if pooled is not None else np.zeros(at.shape)
    return (
        g[pick],
        m_reference[pick],
        m_recent[pick],
        (block * (at + 1)).astype(np.int64),
        extra_at.astype(np.int64),
    )
