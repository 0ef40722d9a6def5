"""Best-effort work for the Celery workers, published without ever making a request wait.

What the web tier asks of the workers — learn from new rewards, deliver a webhook — only
speeds things up: beat's sweeps find pending rewards and due deliveries anyway. So a
request must never wait on a broker (or the coalescing cache) that is slow or down. Jobs
go into a small per-process queue that a background thread drains; a job that fails is
logged and dropped, and while the broker is unreachable the thread backs off instead of
trying again for every job.

Tasks are published by name (``send_task``), so a lower layer can ask for a task that a
higher layer defines (``mabdash.control.tasks``) without importing it;
``tests/mabdash/test_queue.py`` checks that every name used here is a registered task.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)

# Jobs waiting beyond this are dropped (oldest first): the sweeps make up for them.
MAX_PENDING = 10_000
BROKER_BACKOFF_SECONDS = 5.0


class BrokerUnavailable(Exception):
    """Publishing failed; the caller's job is dropped and the broker is left alone a while."""


def send_task(name: str, args: list[Any], countdown: float = 0.0) -> None:
    """Publish one task by name now (blocking); raise :class:`BrokerUnavailable` on failure."""
    from mabdash.celery import app

    try:
        app.send_task(name, args=args, countdown=countdown or None, retry=False)
    except Exception as error:  # kombu raises many types for a broker that is down
        raise BrokerUnavailable(str(error)) from error


class BackgroundJobs:
    """A deduplicating queue of best-effort jobs run by one daemon thread per process."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # gunicorn workers start empty

    def _reset(self) -> None:
        self._jobs: OrderedDict[Hashable, Callable[[], object]] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._running = 0
        self._thread: threading.Thread | None = None
        self._paused_until = 0.0

    def submit(self, key: Hashable, job: Callable[[], object]) -> None:
        """Run ``job`` soon in the background; a job with the same key still waiting is replaced."""
        with self._lock:
            self._jobs.pop(key, None)
            self._jobs[key] = job
            while len(self._jobs) > MAX_PENDING:
                dropped, _ = self._jobs.popitem(last=False)
                logger.warning("background queue full; dropped %r (the sweeps will catch up)", dropped)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mabdash-background", daemon=True)
                self._thread.start()
            self._wake.notify()

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._jobs) + self._running

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted job has run; return False on timeout (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._wake.wait()
                _, job = self._jobs.popitem(last=False)
                self._running += 1
            try:
                self._run_one(job)
            finally:
                with self._lock:
                    self._running -= 1

    def _run_one(self, job: Callable[[], object]) -> None:
        if time.monotonic() < self._paused_until:
            return  # the broker was down a moment ago: drop, the sweeps will catch up
        try:
            job()
        except BrokerUnavailable as error:
            self._paused_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            logger.warning("broker unavailable (%s); background publishing paused for %.0f s", error, 5.0)
        except Exception:
            logger.exception("background job failed")


background = BackgroundJobs()
