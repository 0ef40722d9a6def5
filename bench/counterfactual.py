"""How long does a counterfactual report take, and how much memory, on large ledgers?

    python -m bench.counterfactual [--sizes 100000 1000000 10000000] [--json PATH]

Against a throw-away database on the PostgreSQL server of DATABASE_URL: for each size, an
experiment of 5 arms (and of 3 and 10 arms at 10⁶) gets that many logged decisions with a
reward each (loaded with COPY, a Thompson-like logging split with the 1 % floor), then the
full report — the ledger read through a server-side cursor, IPS/SNIPS/DR of every fixed
alternative, a replay of every strategy — is computed as the evaluation worker computes it.
Figures: wall seconds, of which reading the ledger, and the peak memory Python and numpy
allocated (tracemalloc, in a second computation: tracing slows every allocation). Baseline in the same run: ``SELECT count(*)`` of the same decisions.
"""

from __future__ import annotations

import argparse
import io
import time
import tracemalloc
from typing import Any

import numpy as np

from bench import scratch
from bench.results_file import results_write


def _load(experiment: Any, arms: list[Any], n: int, seed: int) -> None:
    """``n`` decisions and rewards for ``experiment`` by COPY (fast, like a busy month)."""
    from django.db import connection
    from django.utils import timezone

    from mabdash.experiments.models import Decision, Reward

    rng = np.random.default_rng(seed)
    k = len(arms)
    means = np.linspace(0.5, 0.6, k)
    served = np.full(k, 0.01)
    served[k // 2] = 1 - 0.01 * (k - 1)
    start = timezone.now().timestamp() - n / 1000
    chunk = 1_000_000
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for offset in range(0, n, chunk):
            size = min(chunk, n - offset)
            chosen = rng.choice(k, size, p=served)
            values = (rng.random(size) < means[chosen]).astype(int)
            ids = [f"d{experiment.pk}-{offset + i}" for i in range(size)]
            times = start + (offset + np.arange(size)) / 1000
            decisions = io.StringIO()
            rewards = io.StringIO()
            for i in range(size):
                stamp = (
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(times[i])) + f".{int(times[i] * 1000) % 1000:03d}+00"
                )
                arm_id = arms[chosen[i]].pk
                decisions.write(f"{ids[i]}\t{experiment.pk}\t{arm_id}\t{served[chosen[i]]}\t1\tpolicy\t{stamp}\n")
                rewards.write(
                    f"{ids[i]}\t{experiment.pk}\t{arm_id}\t{ids[i]}\t{values[i]}\t1\t{stamp}\t{stamp}\tt\t1\n"
                )
            columns = "decision_id, experiment_id, arm_id, propensity, policy_version, served_by, created_at"
            with raw.copy(f"COPY {Decision._meta.db_table} ({columns}) FROM STDIN") as copy:
                copy.write(decisions.getvalue())
            columns = "event_id, experiment_id, arm_id, decision_id, value, trials, received_at, decided_at, learn, applied_version"
            with raw.copy(f"COPY {Reward._meta.db_table} ({columns}) FROM STDIN") as copy:
                copy.write(rewards.getvalue())
        cursor.execute("ANALYZE")


def _measure(experiment: Any) -> dict[str, Any]:
    from django.db import connection

    from mabdash.evaluation.services import ledger, reports

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM experiments_decision WHERE experiment_id = %s", [experiment.pk])
        cursor.fetchone()
    baseline = time.perf_counter() - started
    # Timed without tracemalloc (it slows every allocation), then once more to trace memory.
    started = time.perf_counter()
    log = ledger.ledger_log(experiment, None, _now())
    read = time.perf_counter() - started
    del log
    report = reports.report_request(experiment, "bench")  # queued; computed here, as the worker would
    started = time.perf_counter()
    done = reports.report_compute(report.pk)
    total = time.perf_counter() - started
    tracemalloc.start()
    reports.report_compute(reports.report_request(experiment, "bench").pk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert done.status == "done" and done.result is not None, done.error
    return {
        "seconds": round(total, 2),
        "read_seconds": round(read, 2),
        "count_baseline_seconds": round(baseline, 3),
        "peak_mib": round(peak / 2**20, 1),
        "strategies": len(done.result["strategies"]),
        "sentence": done.result["sentence"],
    }


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    database = scratch.setup()

    cases = [(size, 5) for size in args.sizes] + [(1_000_000, 3), (1_000_000, 10)] * (1_000_000 in args.sizes)
    rows = []
    print(f"counterfactual report, {database}; decisions, arms → seconds (reading the ledger), peak MiB")
    for index, (size, k) in enumerate(cases):
        experiment = scratch.running_experiment(f"cf-{index}", k)
        _load(experiment, list(experiment.arms.order_by("position")), size, seed=index)
        row = {"decisions": size, "arms": k, **_measure(experiment)}
        rows.append(row)
        print(
            f"{size:>12,} {k:>3} arms: {row['seconds']:>7.2f} s (ledger {row['read_seconds']:.2f} s; "
            f"count(*) {row['count_baseline_seconds']:.3f} s), peak {row['peak_mib']:,.0f} MiB"
        )
    result = {"database": database, "rows": rows}
    if args.json:
        results_write(args.json, result)
    return result


if __name__ == "__main__":
    main()
