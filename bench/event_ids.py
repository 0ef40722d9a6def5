"""Reward ingestion into a large ledger: random event ids against time-ordered ones.

    python -m bench.event_ids [--rows N] [--batches N] [--json PATH]

Against a throw-away database on the PostgreSQL server of DATABASE_URL: the reward table
(every index of the real one) is loaded with ``--rows`` stored rewards (random ids, as
``md5``; default 5 million, more than the server's shared buffers hold of its indexes),
checkpointed, then batches of 1,000 rewards are recorded through the service the API uses
(``rewards_record``: parsing, attribution, the one-statement insert), alternately with
random ids (UUIDv4, the baseline) and time-ordered ones (UUIDv7, what the server and the
Python client make), each after a checkpoint, twice. Figures per kind: rewards/s, and per
reward the full-page images and bytes written to the write-ahead log (``pg_stat_wal``,
server-wide: run it on a quiet server).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

from bench import scratch
from bench.results_file import results_write

KINDS = {"uuid4": lambda: uuid.uuid4().hex, "uuid7": None}  # uuid7: mabdash's own, set after setup


def _load(experiment_id: int, arm_ids: list[int], rows: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH r AS (INSERT INTO experiments_reward (event_id, experiment_id, arm_id, value, trials, received_at, "
            "learn, applied_version) SELECT md5(n::text), %s, (%s::bigint[])[1 + n %% %s], n %% 2, 1, "
            "now() - (%s - n) * interval '10 ms', true, 1 + n / 5000 FROM generate_series(0, %s - 1) n "
            "RETURNING experiment_id, event_id, received_at) "
            "INSERT INTO experiments_rewardkey (experiment_id, event_id, received_at) SELECT * FROM r",
            [experiment_id, arm_ids, len(arm_ids), rows, rows],
        )
        cursor.execute("VACUUM ANALYZE experiments_reward, experiments_rewardkey")
        cursor.execute("CHECKPOINT")
    return time.perf_counter() - started


def _wal() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        # This backend's WAL counters reach pg_stat_wal when it next reports (at most once
        # a second otherwise); the position of the log itself is exact.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT wal_fpi, pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_wal")
        fpi, wal_bytes = cursor.fetchone()
    return int(fpi), int(wal_bytes)


def _run(kind: str, slug: str, principal: Any, batches: int) -> dict[str, float]:
    from django.db import connection

    from mabdash.experiments.services.rewards import rewards_record

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    make_id = KINDS[kind]
    assert make_id is not None
    fpi_before, wal_before = _wal()
    started = time.perf_counter()
    for _ in range(batches):
        items = [{"experiment": slug, "arm": i % 3, "value": i % 2, "event_id": make_id()} for i in range(1000)]
        outcomes = rewards_record(items, principal)
        assert all(o.status == "accepted" for o in outcomes), outcomes[0]
    elapsed = time.perf_counter() - started
    fpi_after, wal_after = _wal()
    count = batches * 1000
    return {
        "per_s": count / elapsed,
        "fpi_per_reward": (fpi_after - fpi_before) / count,
        "wal_bytes_per_reward": (wal_after - wal_before) / count,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rewards stored before measuring")
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 per measurement")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if scratch.setup() != "PostgreSQL":
        raise SystemExit("bench.event_ids: needs DATABASE_URL pointing at a PostgreSQL server")
    from mabdash.accounts.authentication import principal_for_key
    from mabdash.accounts.services import api_key_create
    from mabdash.experiments.event_ids import time_ordered_id

    KINDS["uuid7"] = time_ordered_id
    experiment = scratch.running_experiment("events", 3)
    principal = principal_for_key(api_key_create(name="bench", experiments=[experiment]).raw_key)
    arm_ids = list(experiment.arms.order_by("position").values_list("id", flat=True))
    print(f"loading {args.rows:,} stored rewards …", flush=True)
    results: dict[str, Any] = {
        "rows": args.rows,
        "batches": args.batches,
        "load_s": _load(experiment.pk, arm_ids, args.rows),
    }
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for kind in ("uuid4", "uuid7", "uuid4", "uuid7"):
        runs[kind].append(_run(kind, experiment.slug, principal, args.batches))
        print(f"{kind}: {runs[kind][-1]}", flush=True)
    results["kinds"] = {
        kind: {key: sum(r[key] for r in measured) / len(measured) for key in measured[0]}
        for kind, measured in runs.items()
    }
    results["runs"] = runs
    print(json.dumps(results["kinds"], indent=1))
    if args.json:
        results_write(args.json, results)
    return results


if __name__ == "__main__":
    main()
