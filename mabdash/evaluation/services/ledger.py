"""Read an experiment's decision and reward ledgers as one log for the estimators.

On PostgreSQL the rows leave the database as text through ``COPY … TO STDOUT`` and are
parsed by numpy block by block: ten million decisions become three arrays without ever
being ten million Python tuples (``python -m bench.counterfactual`` measures it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection, transaction

from mabdash.experiments.models import Arm, Decision, Experiment, Reward
from policies.counterfactual import Log

#: Rows fetched per round trip on databases without COPY (SQLite).
CHUNK = 100_000
#: COPY text parsed per step.
PARSE_BYTES = 8 << 20
#: Memory PostgreSQL may use to sort the decisions of this query (the default 4 MB spills
#: a million decisions to disk and doubles the time).
SORT_MEMORY = "64MB"
_SEPARATORS = bytes.maketrans(b"\t\n", b"  ")


def _query(experiment: Experiment, since: datetime | None) -> tuple[str, list[Any]]:
    """Position, propensity and mean reward (NaN without one) of every decision, in order."""
    decisions, rewards, arms = Decision._meta.db_table, Reward._meta.db_table, Arm._meta.db_table
    window = "AND d.created_at >= %s" if since is not None else ""
    sql = (
        f"SELECT a.position, d.propensity, COALESCE(r.mean, 'NaN') FROM {decisions} d "
        f"JOIN {arms} a ON a.id = d.arm_id LEFT JOIN ("
        f"  SELECT decision_id, AVG(value / trials) AS mean FROM {rewards}"
        "   WHERE experiment_id = %s AND decision_id IS NOT NULL GROUP BY decision_id"
        f") r ON r.decision_id = d.decision_id WHERE d.experiment_id = %s {window} AND d.created_at <= %s "
        "ORDER BY d.created_at, d.decision_id"
    )
    return sql, [experiment.pk, experiment.pk, *([since] if since is not None else [])]


def ledger_log(experiment: Experiment, since: datetime | None, until: datetime) -> Log:
    """Every decision of ``experiment`` in [since, until], in the order served, with the mean
    of its rewards (a count reward counts as successes / trials; NaN without a reward)."""
    sql, params = _query(experiment, since)
    params.append(until)
    rows = _read_postgresql(sql, params) if connection.vendor == "postgresql" else _read_rows(sql, params)
    n_arms = Arm.objects.filter(experiment=experiment).count() or 1
    return Log.of(rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 2], n_arms)


def _read_postgresql(sql: str, params: list[Any]) -> np.ndarray:
    """The query's rows as an (n, 3) float array, through COPY TO STDOUT, parsed in blocks
    of about 8 MiB (psycopg hands COPY text over row by row)."""
    parts: list[np.ndarray] = []
    pending = bytearray()

    def parse(final: bool) -> None:
        cut = len(pending) if final else pending.rfind(b"\n") + 1
        if cut:
            text = bytes(pending[:cut]).translate(_SEPARATORS)
            parts.append(np.fromstring(text, dtype=float, sep=" "))
            del pending[:cut]

    with transaction.atomic():  # SET LOCAL lasts until the end of this transaction
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")  # sort the decisions in memory
            query = cursor.mogrify(sql, params)
            with cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
                for data in copy:
                    pending.extend(data)
                    if len(pending) >= PARSE_BYTES:
                        parse(final=False)
            parse(final=True)
    values = np.concatenate(parts) if parts else np.zeros(0)
    return values.reshape(-1, 3)


def _read_rows(sql: str, params: list[Any]) -> np.ndarray:
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("'NaN'", "NULL"), params)
        chunks = []
        while rows := cursor.fetchmany(CHUNK):
            chunks.append(np.array([[p, q, np.nan if m is None else m] for p, q, m in rows], dtype=float))
    return np.concatenate(chunks) if chunks else np.zeros((0, 3))
