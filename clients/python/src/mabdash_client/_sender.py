"""The background sender: a bounded queue of rewards, sent in batches, retried until delivered.

``concurrency`` daemon threads (2 by default) per client. A batch leaves when it holds ``batch_size`` rewards, when its
oldest reward is ``max_age`` seconds old, or at once while someone waits in ``flush``. A batch
that meets a network error, a 429, or a 5xx is sent again — the same event ids, so the server
stores each reward once — after a back-off with jitter (or the server's ``Retry-After``),
until it is delivered or the client is closed.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import httpx

from mabdash_client._types import DeliveryReport, QueueFull, RewardOutcome

logger = logging.getLogger("mabdash_client")

WhenFull = Literal["block", "drop_oldest", "raise"]
#: Statuses worth sending the same batch again for (idempotent event ids make it safe).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The server's own limit on one batch.
SERVER_BATCH_LIMIT = 10_000


class _Queued(NamedTuple):  # a tuple: built on the decide hot path, twice as fast as a dataclass
    payload: dict[str, Any]
    queued_at: float


class RewardSender:
    """Queue rewards and deliver them in the background (see the module docs).

    Parameters
    ----------
    post : callable
        Sends one JSON body ``{"rewards": [...]}`` and returns the response (raises
        ``httpx.TransportError`` when the server cannot be reached).
    batch_size : int
        Most rewards in one request (1 … 10,000).
    max_age : float
        Seconds the oldest queued reward may wait before its batch is sent.
    max_queue : int
        Most rewards queued or in flight.
    when_full : {"block", "drop_oldest", "raise"}
        What :meth:`put` does when the queue is full: wait for room (at most
        ``block_timeout`` seconds, then raise :class:`QueueFull`), drop the oldest queued
        reward (reported as ``undelivered`` and counted in ``dropped``), or raise at once.
    retry_base, retry_cap : float
        Back-off after the n-th failed try: uniform in [½, 1] × min(cap, base × 2ⁿ) seconds;
        a ``Retry-After`` from the server is honoured when it is longer.
    on_outcome : callable, optional
        Called in the sender thread with each :class:`RewardOutcome`.
    concurrency : int
        Batches in flight at once (one thread each): a second one keeps the server busy
        while the first one's answer travels back.
    id_key : str
        The payload field that identifies an item in outcomes (``decision_id`` when the same
        machinery reports served decisions in local mode).
    payload_of : callable, optional
        Turns what :meth:`put_unbounded` was given into the payload, in the sender thread
        (local mode queues bare decision ids: the decide hot path allocates nothing for them).
    """

    def __init__(
        self,
        post: Callable[[dict[str, Any]], httpx.Response],
        *,
        batch_size: int = 500,
        max_age: float = 0.2,
        max_queue: int = 100_000,
        when_full: WhenFull = "block",
        block_timeout: float | None = None,
        retry_base: float = 0.1,
        retry_cap: float = 30.0,
        on_outcome: Callable[[RewardOutcome], None] | None = None,
        seed: int | None = None,
        id_key: str = "event_id",
        payload_of: Callable[[Any], dict[str, Any]] | None = None,
        concurrency: int = 2,
    ) -> None:
        if not 1 <= batch_size <= SERVER_BATCH_LIMIT:
            raise ValueError(f"batch_size: must be 1 … {SERVER_BATCH_LIMIT:,}, got {batch_size}")
        if not (math.isfinite(max_age) and max_age >= 0):
            raise ValueError(f"max_age: must be a finite number ≥ 0, got {max_age}")
        if max_queue < batch_size:
            raise ValueError(f"max_queue: must be at least batch_size ({batch_size}), got {max_queue}")
        if not 1 <= concurrency <= 16:
            raise ValueError(f"concurrency: must be 1 … 16, got {concurrency}")
        if when_full not in ("block", "drop_oldest", "raise"):
            raise ValueError(f"when_full: must be 'block', 'drop_oldest' or 'raise', got {when_full!r}")
        self._post = post
        self._concurrency = concurrency
        self._id_key = id_key
        self._payload_of = payload_of
        self._batch_size = batch_size
        self._max_age = max_age
        self._max_queue = max_queue
        self._when_full = when_full
        self._block_timeout = block_timeout
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._on_outcome = on_outcome
        self._random = random.Random(seed)
        self._queue: deque[_Queued] = deque()
        self._inbox: deque[Any] = deque()  # put_unbounded's items, moved to _queue by the sender
        self._inbox_since = 0.0  # when the inbox last went from empty to not empty
        self._inbox_used = False  # then the sender wakes every max_age to look at the inbox
        self._in_flight = 0
        self._flushers = 0
        self._closing = False
        self._abandon = threading.Event()  # set when close() stops waiting: give up retrying
        self._undelivered: list[RewardOutcome] = []
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.stats = dict.fromkeys(
            ("queued", "batches", "accepted", "duplicate", "conflict", "rejected", "undelivered", "dropped", "retries"),
            0,
        )

    # -- the caller's side -------------------------------------------------------------------

    def put(self, payload: dict[str, Any]) -> None:
        with self._cv:
            if self._closing:
                raise RuntimeError("the client is closed")
            if self._size() >= self._max_queue:
                self._make_room()
            self._queue.append(_Queued(payload, time.monotonic()))
            self.stats["queued"] += 1
            self._start()
            # The sender sleeps without a deadline only when the queue was empty, and must be
            # woken early only for a full batch: other puts need no wake-up (the hot path).
            if len(self._queue) == 1 or len(self._queue) >= self._batch_size:
                self._cv.notify_all()

    def is_full(self) -> bool:
        return self._size() >= self._max_queue

    def put_unbounded(self, item: Any, now: float | None = None) -> None:
        """Queue without taking the lock (a ``deque.append``, atomic in CPython): for the decide
        hot path (which passes its own ``time.monotonic()``). Not bounded by ``max_queue``; the
        sender picks items up at least every ``max_age`` seconds, and makes the payload of each
        (``payload_of``; without it the item is the payload).

        Only the first item after the sender emptied the inbox is timed: the rest count as
        queued then (a race with the sender can only make an item look older — sent sooner),
        so the hot path allocates no queue entry of its own.
        """
        if self._closing:
            raise RuntimeError("the client is closed")
        if not self._inbox:
            self._inbox_since = time.monotonic() if now is None else now
        self._inbox.append(item)
        if not self._inbox_used:
            with self._cv:
                self._inbox_used = True
                self._start()
                self._cv.notify_all()

    def flush(self, timeout: float | None = None) -> DeliveryReport:
        """Send everything queued now and wait until it is delivered (or ``timeout`` passes).

        The report lists the rewards given up on since the last report.
        """
        with self._cv:
            self._wait_until_sent(timeout)
            return self._report()

    def close(self, timeout: float | None = 30.0) -> DeliveryReport:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop the thread.

        Whatever could not be delivered by then is reported, reward by reward, as
        ``undelivered`` — nothing is lost silently.
        """
        with self._cv:
            self._closing = True
            self._wait_until_sent(timeout)
        self._abandon.set()
        with self._cv:
            self._cv.notify_all()
        for thread in self._threads:
            thread.join()
        with self._cv:
            self._absorb()
            while self._queue:
                self._give_up(self._queue.popleft().payload, "the client was closed before it could be delivered")
            return self._report()

    def _wait_until_sent(self, timeout: float | None) -> None:
        """Called holding the lock: batches leave at once while someone waits here."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._flushers += 1
        self._cv.notify_all()
        try:
            while self._size() and not self._abandon.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                self._cv.wait(remaining)
        finally:
            self._flushers -= 1

    # -- the sender thread ---------------------------------------------------------------------

    def _start(self) -> None:
        if not self._threads:
            for index in range(self._concurrency):
                thread = threading.Thread(target=self._run, name=f"mabdash-sender-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._batch_due():
                    if self._abandon.is_set():
                        return
                    self._cv.wait(self._wait_time())
                if self._abandon.is_set():
                    return
                batch = [self._queue.popleft().payload for _ in range(min(self._batch_size, len(self._queue)))]
                self._in_flight += len(batch)
            try:
                self._deliver(batch)
            except Exception:  # a bug of ours must not stop delivery of later batches
                logger.exception("mabdash: unexpected error while delivering %d rewards", len(batch))
                with self._cv:
                    for payload in batch:
                        self._give_up(payload, "the client failed unexpectedly (logged)")
            with self._cv:
                self._in_flight -= len(batch)
                self._cv.notify_all()

    def _batch_due(self) -> bool:
        self._absorb()
        if not self._queue:
            return False
        if len(self._queue) >= self._batch_size or self._flushers or self._closing:
            return True
        return time.monotonic() - self._queue[0].queued_at >= self._max_age

    def _wait_time(self) -> float | None:
        if not self._queue:
            return self._max_age if self._inbox_used else None
        return max(0.0, self._queue[0].queued_at + self._max_age - time.monotonic())

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            problem, retry_after = self._try(batch)
            if problem is None:
                return
            if retry_after is None:  # not worth another try
                with self._cv:
                    for payload in batch:
                        self._give_up(payload, problem)
                return
            delay = max(retry_after, self._backoff(attempt))
            attempt += 1
            with self._cv:
                self.stats["retries"] += 1
            logger.warning("mabdash: %d rewards not delivered (%s); trying again in %.1f s", len(batch), problem, delay)
            if self._abandon.wait(delay):
                with self._cv:
                    for payload in batch:
                        self._give_up(payload, f"the client was closed while retrying: {problem}")
                return

    def _try(self, batch: list[dict[str, Any]]) -> tuple[str | None, float | None]:
        """Send once. Returns (None, None) when done, else the problem and when to retry (None: never)."""
        try:
            response = self._post({"rewards": batch})
        except httpx.TransportError as error:
            return f"{type(error).__name__}: {error}", 0.0
        if response.status_code == 200:
            self._record(batch, response.json()["results"])
            with self._cv:
                self.stats["batches"] += 1
            return None, None
        if response.status_code == 413 and len(batch) > 1:
            half = len(batch) // 2
            self._deliver(batch[:half])
            self._deliver(batch[half:])
            return None, None
        problem = f"HTTP {response.status_code}: {_detail(response)}"
        if response.status_code in RETRY_STATUSES:
            return problem, _retry_after(response)
        if response.status_code == 400:  # the batch as a whole was refused: each reward with the reason
            self._record(
                batch, [{"index": i, "status": "rejected", "errors": _errors(response)} for i in range(len(batch))]
            )
            return None, None
        return problem, None

    def _record(self, batch: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        outcomes = []
        with self._cv:
            for result in results:
                payload = batch[result["index"]]
                status = result["status"]
                self.stats[status] += 1
                outcomes.append(RewardOutcome(payload[self._id_key], status, payload, result.get("errors") or {}))
        for outcome in outcomes:
            self._tell(outcome)

    def _give_up(self, payload: dict[str, Any], reason: str) -> None:
        """Called holding the lock."""
        outcome = RewardOutcome(payload[self._id_key], "undelivered", payload, {"delivery": [reason]})
        self.stats["undelivered"] += 1
        self._undelivered.append(outcome)
        self._tell(outcome)

    def _tell(self, outcome: RewardOutcome) -> None:
        if self._on_outcome is None:
            return
        try:
            self._on_outcome(outcome)
        except Exception:
            logger.exception("mabdash: the on_outcome callback failed")

    def _make_room(self) -> None:
        """Called holding the lock, with the queue full."""
        if self._when_full == "raise":
            raise QueueFull(f"the reward queue is full ({self._max_queue:,} rewards)")
        if self._when_full == "drop_oldest" and self._queue:
            self.stats["dropped"] += 1
            self._give_up(self._queue.popleft().payload, "dropped: the reward queue was full")
            return
        deadline = None if self._block_timeout is None else time.monotonic() + self._block_timeout
        while self._size() >= self._max_queue:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueFull(
                    f"the reward queue stayed full ({self._max_queue:,} rewards) for {self._block_timeout} s"
                )
            self._cv.wait(remaining)

    def _backoff(self, attempt: int) -> float:
        return min(self._retry_cap, self._retry_base * 2**attempt) * self._random.uniform(0.5, 1.0)

    def _size(self) -> int:
        return len(self._queue) + len(self._inbox) + self._in_flight

    def _absorb(self) -> None:
        """Called holding the lock: move put_unbounded's items into the queue."""
        since, payload_of = self._inbox_since, self._payload_of
        while self._inbox:
            item = self._inbox.popleft()
            self._queue.append(_Queued(item if payload_of is None else payload_of(item), since))
            self.stats["queued"] += 1

    def _report(self) -> DeliveryReport:
        undelivered, self._undelivered = self._undelivered, []
        return DeliveryReport(pending=self._size(), undelivered=undelivered)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:  # an HTTP date: rare from mabdash; the back-off decides
        return 0.0


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:200]
    except ValueError:
        return response.text[:200]


def _errors(response: httpx.Response) -> dict[str, list[str]]:
    try:
        errors = response.json().get("errors") or {}
    except ValueError:
        errors = {}
    return errors or {"batch": [_detail(response)]}
