"""Local mode: decisions handed out in-process from blocks the server drew and signed.

The server's snapshot endpoint returns what decide samples from now and a block of signed
decisions drawn from it. The client hands them out one per request (a ``deque.popleft``),
reports the ones it served (batched, in the background) so the decision ledger stays
complete, and polls the snapshot every ``refresh_interval`` seconds with ``If-None-Match``:
when a pin, a rollback or new learning changes what is served, the unused draws are thrown
away (draws do not depend on the request, so that biases nothing) and a new block is used.

When no signed draw is at hand (the block ran out, the server is unreachable) the client
asks the server (remote decide); if that fails too it samples the last snapshot itself —
``served_by="offline"``, no decision id, the reward is sent by experiment and arm — and once
the snapshot is older than ``max_staleness`` it serves the snapshot's default arm
(``served_by="offline_default"``).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from mabdash_client._sender import RewardSender
from mabdash_client._types import Decision, MabdashError

logger = logging.getLogger("mabdash_client")

#: The fewest draws asked for at a time.
MIN_BLOCK = 50


#: A decision's fields before and after its id (see ``_fields``).
_Fields = tuple[tuple[Any, ...], tuple[Any, ...]]
_ID = Decision._fields.index("decision_id")
_new_tuple = tuple.__new__


def _fields(template: Decision) -> _Fields:
    """Split an arm's decision around the id, once per snapshot: a local decision is then one
    tuple put together (``_new_tuple``), a third of the cost of building it field by field —
    the hot path's budget is microseconds, and every one counts against the tail."""
    return template[:_ID], template[_ID + 1 :]


def decision_of(
    slug: str, snapshot: dict[str, Any], arm: int, served_by: str | None = None, share: float | None = None
) -> Decision:
    """The decision for ``arm`` of a snapshot, without its id (``served_by`` and ``share``
    default to the snapshot's own)."""
    entry = snapshot["arms"][arm]
    model = entry["model"]
    return Decision(
        experiment=slug,
        arm=arm,
        model_name=str(model["name"]),
        model_version=str(model["version"]),
        artifact_uri=str(model.get("artifact_uri", "")),
        decision_id="",
        propensity=float(entry["share"]) if share is None else share,
        policy_version=int(snapshot["policy_version"]),
        served_by=str(snapshot["served_by"]) if served_by is None else served_by,
        serving_version=int(snapshot.get("serving_version", 0)),
    )


@dataclass
class _Experiment:
    """What the client holds for one experiment."""

    slug: str
    snapshot: dict[str, Any]
    etag: str
    fetched_at: float
    # (decision id, its arm's decision fields, drawn at): a draw carries the fields of the
    # snapshot it came with, so a decision is labelled by the snapshot that made it even while
    # the refresh thread is halfway through adopting the next one.
    pool: deque[tuple[str, _Fields, float]] = field(default_factory=deque)
    cdf: list[float] = field(default_factory=list)
    reporter: RewardSender | None = None
    # How many draws to ask for: ``pool_seconds`` of this client's own traffic (at most
    # block_size), so an outage that long is served with signed draws, while a quiet client does
    # not make the server sign thousands of draws it throws away at the next snapshot.
    want: int = 0
    taken: int = 0
    # The newest serving_version a remote answer came from (see ``LocalDecider.saw``).
    seen_version: int = 0
    rate: float = 0.0
    rated_at: float = 0.0

    def adopt(self, snapshot: dict[str, Any], etag: str, now: float) -> None:
        """A new snapshot: its draws replace the old ones (same ETag: they are added)."""
        fields = [_fields(decision_of(self.slug, snapshot, arm)) for arm in range(len(snapshot["arms"]))]
        drawn = [(d["decision_id"], fields[int(d["arm"])], now) for d in snapshot.pop("decisions")]
        total, cdf = 0.0, []
        for arm in snapshot["arms"]:
            total += float(arm["share"])
            cdf.append(total)
        if etag == self.etag:
            self.pool.extend(drawn)
        else:
            self.pool = deque(drawn)  # one assignment: take() sees the old draws or the new ones
        self.snapshot, self.etag, self.fetched_at, self.cdf = snapshot, etag, now, cdf
        self.seen_version = 0  # the snapshot is at least as new (or the server says otherwise)

    @property
    def serving_version(self) -> int:
        """What the server is asked to be at least as new as: the snapshot's version, or a
        remote answer's if newer (0 from a server without versions)."""
        return max(int(self.snapshot.get("serving_version", 0)), self.seen_version)


class LocalDecider:
    """Keeps every experiment's snapshot and signed draws fresh; hands out decisions."""

    def __init__(
        self,
        http: httpx.Client,
        make_reporter: Callable[[str], RewardSender],
        *,
        block_size: int,
        refresh_interval: float,
        max_staleness: float,
        draw_max_age: float,
        remote_decide: Callable[[str, int], Decision],
        pool_seconds: float = 10.0,
    ) -> None:
        if not 1 <= block_size <= 10_000:
            raise ValueError(f"block_size: must be 1 … 10,000, got {block_size}")
        if not refresh_interval > 0:
            raise ValueError(f"refresh_interval: must be > 0, got {refresh_interval}")
        self._http = http
        self._make_reporter = make_reporter
        self._block_size = block_size
        self._refresh_interval = refresh_interval
        self._max_staleness = max_staleness
        self._draw_max_age = draw_max_age
        self._pool_seconds = pool_seconds
        self._remote_decide = remote_decide
        self._experiments: dict[str, _Experiment] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        self._stats_lock = threading.Lock()
        self.stats = dict.fromkeys(("local", "remote_fallback", "offline", "offline_default", "refreshes"), 0)

    def decide(self, slug: str) -> Decision:
        experiment = self._experiments.get(slug) or self.first_snapshot(slug)
        decision = self.take(experiment)
        if decision is not None:
            return decision
        try:
            # At least as new as the snapshot held: a web process whose cache has not yet seen
            # a pin the client already follows must not answer with the old allocation.
            decision = self._remote_decide(slug, experiment.serving_version)
            self._count("remote_fallback")
            self.saw(experiment, decision.serving_version)
            return decision
        except MabdashError:
            return self.offline(experiment)

    def held(self, slug: str) -> _Experiment | None:
        """The experiment's state if its first snapshot is here (the async client's fast path)."""
        return self._experiments.get(slug)

    def take(self, experiment: _Experiment) -> Decision | None:
        """The next signed draw, or None when none is at hand (a refresh is then asked for)."""
        now = time.monotonic()
        pool = experiment.pool
        while pool:
            try:
                decision_id, (head, tail), drawn_at = pool.popleft()
            except IndexError:  # another thread took the last one
                break
            if now - drawn_at > self._draw_max_age:
                continue  # drawn too long ago for the ledger's time to be right
            experiment.taken += 1
            if len(pool) < experiment.want // 2:
                self._wake.set()
            assert experiment.reporter is not None
            experiment.reporter.put_unbounded(decision_id, now)
            self._count("local")
            return _new_tuple(Decision, (*head, decision_id, *tail))
        self._wake.set()
        return None

    def count_remote_fallback(self) -> None:
        self._count("remote_fallback")

    def saw(self, experiment: _Experiment, serving_version: int) -> None:
        """A remote answer came from ``serving_version``: when that is newer than the snapshot
        (a pin one web process has already read), the old draws are dropped, nothing older is
        asked for or adopted from now on (a snapshot request already in flight may answer
        with the old one), and the newer snapshot is fetched at once."""
        if serving_version > experiment.serving_version:
            experiment.seen_version = serving_version
            experiment.pool = deque()  # draws of an allocation known to be replaced
            self._wake.set()

    def close(self, timeout: float | None) -> list[Any]:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return [e.reporter.close(timeout) for e in self._experiments.values() if e.reporter is not None]

    def reporter_stats(self) -> list[dict[str, int]]:
        """The counters of each experiment's decision reports."""
        return [dict(e.reporter.stats) for e in self._experiments.values() if e.reporter is not None]

    def flush(self, timeout: float | None) -> list[Any]:
        return [e.reporter.flush(timeout) for e in self._experiments.values() if e.reporter is not None]

    # -- internals ---------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1

    def first_snapshot(self, slug: str) -> _Experiment:
        with self._lock:
            if slug in self._experiments:
                return self._experiments[slug]
            snapshot, etag = self._fetch(slug, self._block_size, None, 0)
            if snapshot is None:
                raise MabdashError(f"decide: no snapshot of {slug!r} yet")
            now = time.monotonic()
            experiment = _Experiment(slug, {}, "", 0.0, reporter=self._make_reporter(slug), want=self._block_size)
            experiment.rated_at = now
            experiment.adopt(snapshot, etag, now)
            self._experiments[slug] = experiment
            if self._thread is None:
                self._thread = threading.Thread(target=self._refresh_loop, name="mabdash-snapshots", daemon=True)
                self._thread.start()
            return experiment

    def _fetch(
        self, slug: str, decisions: int, etag: str | None, min_serving_version: int
    ) -> tuple[dict[str, Any] | None, str]:
        headers = {"If-None-Match": etag} if etag else {}
        params = {"decisions": decisions, "min_serving_version": min_serving_version}
        response = self._http.get(
            f"/api/v1/experiments/{quote(slug, safe='')}/snapshot/", params=params, headers=headers
        )
        if response.status_code == 304:
            return None, etag or ""
        if response.status_code != 200:
            raise MabdashError(f"snapshot: HTTP {response.status_code}", response.status_code)
        self._count("refreshes")
        return response.json(), response.headers.get("ETag", "")

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._refresh_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            for experiment in list(self._experiments.values()):
                try:
                    self._refresh(experiment)
                except (httpx.TransportError, MabdashError) as error:
                    logger.warning(
                        "mabdash: snapshot of %s not refreshed (%s); serving the last one", experiment.slug, error
                    )

    def _refresh(self, experiment: _Experiment) -> None:
        changed, etag = self._fetch(experiment.slug, 0, experiment.etag, experiment.serving_version)
        now = time.monotonic()
        self._rate(experiment, now)
        if changed is None and len(experiment.pool) >= experiment.want // 2:
            experiment.fetched_at = now  # confirmed current
            return
        asked = experiment.serving_version
        snapshot, etag = self._fetch(experiment.slug, experiment.want, None, asked)
        if snapshot is None:
            return
        if asked < experiment.seen_version and int(snapshot.get("serving_version", 0)) < experiment.seen_version:
            # Asked before a remote answer showed a newer allocation: ask again, at least as new.
            # (Asked with that version and still older: the server's word wins — e.g. the
            # experiment was made anew under the same slug.)
            self._wake.set()
            return
        experiment.adopt(snapshot, etag, time.monotonic())

    def _rate(self, experiment: _Experiment, now: float) -> None:
        """Update the client's decision rate (a moving average) and the block to ask for."""
        elapsed = now - experiment.rated_at
        if elapsed < self._refresh_interval / 2:  # a wake-up right after a tick: too short to measure
            return
        taken, experiment.taken, experiment.rated_at = experiment.taken, 0, now
        experiment.rate = 0.5 * experiment.rate + 0.5 * taken / elapsed
        needed = math.ceil(experiment.rate * max(2 * self._refresh_interval, self._pool_seconds))
        experiment.want = min(self._block_size, max(MIN_BLOCK, needed))

    def offline(self, experiment: _Experiment) -> Decision:
        """A decision from the last snapshot, made here (no signed draw, no server)."""
        now = time.monotonic()
        snapshot = experiment.snapshot
        if now - experiment.fetched_at > self._max_staleness or not experiment.cdf or experiment.cdf[-1] <= 0:
            self._count("offline_default")
            default = int(snapshot["default_arm"])
            return decision_of(experiment.slug, snapshot, default, served_by="offline_default", share=1.0)
        self._count("offline")
        arm = min(bisect_right(experiment.cdf, self._random.random() * experiment.cdf[-1]), len(experiment.cdf) - 1)
        return decision_of(experiment.slug, snapshot, arm, served_by="offline")
