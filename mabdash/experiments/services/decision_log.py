"""The per-process decision buffer: decisions are written in batches, never row by row.

Each web process appends decisions to an in-memory buffer that a background thread writes
every ``MABDASH["DECISION_FLUSH_SECONDS"]`` (0.5 s by default) with one bulk insert, and
advances each arm's served count in the same transaction. Guarantees:

- graceful stop (SIGTERM, gunicorn worker exit, interpreter exit): the buffer is flushed;
- hard crash (``kill -9``): at most the last flush interval of decisions is lost. Rewards
  for them are still attributed and learned from, because the decision id itself carries
  experiment, arm, policy version and time;
- database down: rows stay buffered (up to ``MAX_BUFFERED``, oldest dropped beyond with an
  error in the log) and are written when it is back.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import F

from mabdash.experiments.models import Arm, Decision

logger = logging.getLogger(__name__)

MAX_BUFFERED = 500_000

#: (decision_id, experiment_id, arm_id, propensity, policy_version, served_by, issued_ms)
DecisionRow = tuple[str, int, int, float, int, str, int]


class DecisionBuffer:
    """Thread-safe buffer with a lazily started, fork-aware flusher thread."""

    def __init__(self) -> None:
        self._reset()
        # A forked child (a gunicorn worker) starts empty, with fresh locks and its own thread.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._rows: list[DecisionRow] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()

    def add(self, row: DecisionRow) -> None:
        """Buffer one decision (the hot path: an append under a lock)."""
        if not self._started:
            self._start()
        with self._lock:
            self._rows.append(row)
            overflow = len(self._rows) - MAX_BUFFERED
            if overflow > 0:
                del self._rows[:overflow]
        if overflow > 0:
            logger.error("decision buffer full; dropped the %d oldest unwritten decisions", overflow)

    def pending(self) -> int:
        """Decisions not yet written."""
        return len(self._rows)

    def flush(self) -> int:
        """Write every buffered decision; return how many. Keeps them on a database error."""
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                self._write(rows)
            except DatabaseError:
                logger.warning("could not write %d decisions; keeping them for the next flush", len(rows))
                with self._lock:
                    self._rows[:0] = rows
                connection.close()
                return 0
            return len(rows)

    @staticmethod
    def _write(rows: list[DecisionRow]) -> None:
        decisions = [
            Decision(
                decision_id=decision_id,
                experiment_id=experiment_id,
                arm_id=arm_id,
                propensity=propensity,
                policy_version=policy_version,
                served_by=served_by,
                created_at=datetime.fromtimestamp(issued_ms / 1000, tz=UTC),
            )
            for decision_id, experiment_id, arm_id, propensity, policy_version, served_by, issued_ms in rows
        ]
        served = Counter(row[2] for row in rows)
        with transaction.atomic():
            Decision.objects.bulk_create(decisions, ignore_conflicts=True, batch_size=2000)
            for arm_id, count in sorted(served.items()):  # fixed order: no deadlock between processes
                Arm.objects.filter(pk=arm_id).update(served_count=F("served_count") + count)

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        interval = settings.MABDASH["DECISION_FLUSH_SECONDS"]
        if interval > 0:
            thread = threading.Thread(target=self._run, args=(interval,), name="decision-flusher", daemon=True)
            thread.start()
        atexit.register(self.stop)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:  # never let the flusher die
                logger.exception("decision flush failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        """Flush and stop the flusher (graceful shutdown)."""
        self._stop.set()
        self.flush()


decision_buffer = DecisionBuffer()


def decisions_insert(rows: list[DecisionRow]) -> set[str]:
    """Write decisions now, each at most once; the ids that were new (the others were already
    in the ledger — a client's retry). Served counts grow by the new ones only."""
    if not rows:
        return set()
    table = Decision._meta.db_table
    columns = "decision_id, experiment_id, arm_id, propensity, policy_version, served_by, created_at"
    inserted: list[tuple[str, int]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            part = rows[start : start + 1000]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(part))
            params = [
                value
                for decision_id, experiment_id, arm_id, propensity, version, served_by, issued_ms in part
                for value in (
                    decision_id,
                    experiment_id,
                    arm_id,
                    propensity,
                    version,
                    served_by,
                    datetime.fromtimestamp(issued_ms / 1000, tz=UTC),
                )
            ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "
                # No conflict target: on PostgreSQL the key is (decision_id, created_at) (the
                # ledger is partitioned by day), on SQLite decision_id; both mean one id.
                "ON CONFLICT DO NOTHING RETURNING decision_id, arm_id",
                params,
            )
            inserted += cursor.fetchall()
        for arm_id, count in sorted(Counter(arm_id for _, arm_id in inserted).items()):
            Arm.objects.filter(pk=arm_id).update(served_count=F("served_count") + count)
    return {decision_id for decision_id, _ in inserted}
