"""Dashboard pages on long histories: the detail page's data endpoint on 30 days of
one-minute snapshots of 10 arms, and the overview with 50 experiments.

    python -m bench.dashboard [--days 30] [--arms 10] [--experiments 50] [--requests 30] [--json PATH]

Times, in-process through Django's test client: the experiment detail page's JSON endpoint
(all history, downsampled on the server), next to the trivial /livez view measured the same
way in the same run; and the overview page with one experiment, then with ``--experiments``
experiments that each have a day of one-minute snapshots. A benchmark prints figures; it does
not pass or fail.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from bench import scratch
from bench.results_file import results_write


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    database = scratch.setup()

    import numpy as np
    from django.test import Client
    from django.utils import timezone

    from mabdash.accounts.services import user_create
    from mabdash.experiments.models import AllocationSnapshot
    from mabdash.experiments.services.experiments import experiment_create

    experiment = scratch.running_experiment("bench", args.arms)
    models = [arm.model_version for arm in experiment.arms.order_by("position")]
    rng = np.random.default_rng(0)

    def analyze() -> None:
        """What autovacuum does to tables that grew, before they are measured: without
        statistics, the planner of a partitioned table cannot tell that its ids are unique."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def snapshots(experiment_id: int, minutes: int, arms: int) -> None:
        start = timezone.now() - timedelta(minutes=minutes)
        batch = []
        for i in range(minutes):
            allocation = rng.dirichlet(np.ones(arms)).round(6).tolist()
            means = rng.random(arms).round(6).tolist()
            batch.append(
                AllocationSnapshot.build(
                    experiment_id=experiment_id,
                    created_at=start + timedelta(minutes=i),
                    policy_version=i,
                    allocation=allocation,
                    effective=allocation,
                    served=[i * 10] * arms,
                    reward_counts=[i * 9] * arms,
                    reward_sums=[i * 4.5] * arms,
                    means=means,
                    lower=[round(m - 0.05, 6) for m in means],
                    upper=[round(m + 0.05, 6) for m in means],
                )
            )
            if len(batch) == 5000:
                AllocationSnapshot.objects.bulk_create(batch)
                batch = []
        AllocationSnapshot.objects.bulk_create(batch)

    minutes = args.days * 24 * 60
    # PostgreSQL: the months' partitions, which beat would have made as they came.
    from mabdash.experiments.services.partitions import SNAPSHOTS, partitions_create

    partitions_create((timezone.now() - timedelta(minutes=minutes)).date(), timezone.now().date(), SNAPSHOTS)
    t0 = time.perf_counter()
    snapshots(experiment.pk, minutes, args.arms)
    populate = time.perf_counter() - t0
    analyze()
    user = user_create(username="bench", password="bench-password-1", role="viewer")
    client = Client()
    client.force_login(user)

    def timed(path: str) -> tuple[list[float], int]:
        client.get(path)  # warm caches and connections
        durations, size = [], 0
        for _ in range(args.requests):
            t = time.perf_counter()
            response = client.get(path)
            durations.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, response.status_code
            size = len(response.content)
        return durations, size

    data, data_bytes = timed("/experiments/bench/data/")
    baseline, _ = timed("/livez")
    overview_one, _ = timed("/")
    for n in range(1, args.experiments):
        other = experiment_create(
            slug=f"bench-{n}",
            name=f"bench {n}",
            policy_kind="thompson",
            model_version_ids=[m.pk for m in models[:3]],
            status="running",
            actor="bench",
        )
        snapshots(other.pk, 24 * 60, 3)
    analyze()
    overview_many, _ = timed("/")
    result = {
        "database": database,
        "snapshots": minutes,
        "arms": args.arms,
        "requests": args.requests,
        "data_endpoint_ms": {"p50": statistics.median(data), "p95": percentile(data, 95), "max": max(data)},
        "data_endpoint_bytes": data_bytes,
        "baseline_livez_ms": {"p50": statistics.median(baseline), "p95": percentile(baseline, 95)},
        "experiments": args.experiments,
        "overview_one_ms": {"p50": statistics.median(overview_one), "p95": percentile(overview_one, 95)},
        "overview_many_ms": {"p50": statistics.median(overview_many), "p95": percentile(overview_many, 95)},
        "populate_seconds": populate,
    }
    print(f"{database}: {minutes:,} snapshots of {args.arms} arms ({populate:.1f} s to insert)")
    print(f"{'endpoint':<34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    print(
        f"{'/experiments/<slug>/data/ (all)':<34}{result['data_endpoint_ms']['p50']:>10.1f}"
        f"{result['data_endpoint_ms']['p95']:>10.1f}{result['data_endpoint_ms']['max']:>10.1f}"
        f"   ({data_bytes / 1024:.0f} KiB)"
    )
    print(
        f"{'/livez (baseline)':<34}{result['baseline_livez_ms']['p50']:>10.1f}"
        f"{result['baseline_livez_ms']['p95']:>10.1f}{max(baseline):>10.1f}"
    )
    print(
        f"{'overview, 1 experiment':<34}{result['overview_one_ms']['p50']:>10.1f}"
        f"{result['overview_one_ms']['p95']:>10.1f}{max(overview_one):>10.1f}"
    )
    print(
        f"{f'overview, {args.experiments} experiments':<34}{result['overview_many_ms']['p50']:>10.1f}"
        f"{result['overview_many_ms']['p95']:>10.1f}{max(overview_many):>10.1f}"
    )
    if args.json:
        results_write(args.json, result)
    return result


if __name__ == "__main__":
    main()
