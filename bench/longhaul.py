"""A month of production traffic: the service's figures on loaded ledgers, next to empty tables.

    python -m bench.longhaul [--scale small|full] [--json PATH]

Needs DATABASE_URL pointing at a PostgreSQL server (a scratch database is created and
dropped) and redis-server. It runs the real deployment (bench/deployment.py) and measures
every figure twice in the same run: first on empty tables, then after loading a month of
history into the ledgers — generated inside PostgreSQL (``INSERT … SELECT … FROM
generate_series``), not through the API, so that even the full scale loads in minutes:

- full: 10 experiments, 50 million decisions, 30 million rewards (every one learned, at
  5,000 per ledger version), one-minute allocation snapshots for 30 days, 5,000 audit
  entries; small: the same shape at 1/100 (a smoke test, under two minutes).

The figures: decide p50/p99 at 300 requests/s (open loop), batched reward ingestion (3
clients × 1,000 per POST), the reward → decide lag, the experiment page's data endpoint and
the overview, the claim of 5,000 pending rewards, ``rebuild_policy_state`` of the measured
experiment, a retention run that archives one day, and table and index sizes. The policy
state of each loaded experiment is computed from the loaded rewards and checkpointed, as
beat's periodic checkpoints would have done; the rebuild then replays only what the
measurements posted after it — the target is a rebuild time independent of history length.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.deployment import Deployment, deployment
from bench.loadgen import build_request, run_load
from bench.results_file import results_write
from bench.service import closed_loop, lag
from mabdash.devstack import Client, create_experiment, wait_for

LEARNING_BATCH = 5000  # rewards per ledger version in the loaded history, as the live default
MEANS = (0.30, 0.50, 0.40)  # the loaded rewards' success rate per arm position
TABLES = (
    "experiments_decision",
    "experiments_reward",
    "experiments_rewardkey",
    "experiments_allocationsnapshot",
    "experiments_auditentry",
)


@dataclass(frozen=True)
class Scale:
    experiments: int
    decisions: int
    rewards: int
    days: int
    audit: int
    seconds: float


SCALES = {
    "small": Scale(experiments=10, decisions=500_000, rewards=300_000, days=30, audit=500, seconds=4.0),
    "full": Scale(experiments=10, decisions=50_000_000, rewards=30_000_000, days=30, audit=5_000, seconds=10.0),
}


def _django(database_url: str) -> None:
    """This process talks to the deployment's database directly (pages, claim, rebuild)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mabdash.settings")
    os.environ["MABDASH_VAR_DIR"] = tempfile.mkdtemp(prefix="mabdash-longhaul-")
    import django

    django.setup()


def _median_ms(call: Any, repeats: int) -> float:
    call()  # warm caches and connections
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        durations.append((time.perf_counter() - start) * 1000)
    return statistics.median(durations)


def _page(path: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client as PageClient

    client = PageClient()
    client.force_login(get_user_model().objects.get(username="longhaul"))

    def get() -> None:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    return get


def _claim_ms(slug: str, rows: int = 5000, repeats: int = 5) -> float:
    """Median time of the learner's claim of ``rows`` pending rewards (inserted and rolled back)."""
    from django.db import transaction
    from django.utils import timezone

    from mabdash.experiments.models import Arm, Experiment, Reward
    from mabdash.experiments.services.learning import _claim_pending

    experiment = Experiment.objects.get(slug=slug)
    arm = Arm.objects.filter(experiment=experiment).order_by("position").first()
    durations = []
    for attempt in range(repeats + 1):
        with transaction.atomic():
            now = timezone.now()
            Reward.objects.bulk_create(
                Reward(event_id=f"claim-{attempt}-{i}", experiment=experiment, arm=arm, value=1.0, received_at=now)
                for i in range(rows)
            )
            start = time.perf_counter()
            claimed = _claim_pending(experiment.pk, 10**12, rows)
            durations.append((time.perf_counter() - start) * 1000)
            assert len(claimed) == rows
            transaction.set_rollback(True)
    return statistics.median(durations[1:])


def _rebuild(slug: str) -> dict[str, Any]:
    from mabdash.experiments.models import Experiment, PolicyState
    from mabdash.experiments.services.rebuild import policy_rebuild

    experiment = Experiment.objects.get(slug=slug)
    start = time.perf_counter()
    rebuilt = policy_rebuild(experiment.pk)
    seconds = time.perf_counter() - start
    live = PolicyState.objects.get(experiment=experiment)
    assert rebuilt.matches(live), "the rebuild must reproduce the live state"
    checkpoint = experiment.checkpoints.order_by("-version").first()
    replayed = live.applied_count - (checkpoint.applied_count if checkpoint else 0)
    return {"seconds": seconds, "replayed_rewards": replayed, "history_rewards": live.applied_count}


def _settle(url: str, key: str) -> None:
    wait_for(lambda: Client(url, key).state("bench")["pending_rewards"] == 0, 600, "learning to catch up", 0.5)


def measure(running: Deployment, scale: Scale, rate: float) -> dict[str, Any]:
    """Every figure, in the order that leaves the least interference between them."""
    url, key = running.url, running.client_key
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    decide = build_request(
        host,
        port,
        "POST",
        "/api/v1/experiments/bench/decide/",
        {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
    )
    run_load(host, port, decide, 200, 2)  # warm every worker
    # Learning catches up before each figure that needs a quiet system. The pages come after
    # the traffic, so that on empty tables too they read the bounded samples they read in
    # production (the latest 2,000 decisions and rewards for the lag chart).
    decided = time.monotonic()
    figures: dict[str, Any] = {"decide": run_load(host, port, decide, rate, scale.seconds).summary()}
    batch = {"rewards": [{"experiment": "bench", "arm": i % 3, "value": i % 2} for i in range(1000)]}
    _, per_s = closed_loop(url, key, batch, 3, scale.seconds)
    figures["batched_rewards_per_s"] = per_s
    _settle(url, key)
    lag_rate = min(2000.0, per_s / 2)
    figures["lag"] = {"rate": lag_rate, **lag(url, key, running.database_url, "bench", lag_rate, scale.seconds * 2)}
    _settle(url, key)
    time.sleep(max(0.0, decided + 61 - time.monotonic()))  # the lag chart counts decisions older than a minute
    figures["data_endpoint_ms"] = _median_ms(_page("/experiments/bench/data/"), 15)
    figures["overview_ms"] = _median_ms(_page("/"), 15)
    figures["claim_5000_ms"] = _claim_ms("bench")
    figures["rebuild"] = _rebuild("bench")
    return figures


# --------------------------------------------------------------------------- the month
def slugs(scale: Scale) -> list[str]:
    return ["bench"] + [f"month-{i}" for i in range(1, scale.experiments)]


def prepare(running: Deployment, scale: Scale, admin: Client) -> None:
    """The experiments, each with its last day of one-minute snapshots, before anything is measured.

    A day is more than the charts draw (360 points), so the pages draw the same charts on
    empty and on loaded ledgers: what the comparison varies is the history, not the chart.
    """
    import psycopg

    for slug in slugs(scale)[1:]:
        create_experiment(admin, slug)
    with psycopg.connect(running.database_url, autocommit=True) as db:
        for (experiment_id,) in db.execute("SELECT id FROM experiments_experiment").fetchall():
            db.execute(_SNAPSHOTS, {"experiment": experiment_id, "days_ago": 1, "minutes": 24 * 60, "series": _SERIES})


def load(running: Deployment, scale: Scale) -> tuple[dict[str, float], dict[str, int]]:
    """Generate a month of history in PostgreSQL; checkpoint each experiment's state.

    Returns the seconds each part took and the rows inserted per table.
    """
    import psycopg

    timings: dict[str, float] = {}
    rows = dict.fromkeys(TABLES, 0)
    with psycopg.connect(running.database_url, autocommit=True) as db:
        start = _one(db, "SELECT now() - %s * interval '1 day'", [scale.days])[0]
        experiments = [
            _one(db, "SELECT id FROM experiments_experiment WHERE slug = %s", [slug])[0] for slug in slugs(scale)
        ]
        decisions = scale.decisions // scale.experiments
        rewards = scale.rewards // scale.experiments
        _partitions(start)
        # As any bulk load: the plain indexes are built once afterwards rather than row by
        # row (the primary keys and unique constraints stay, so duplicates would still fail).
        indexes = _drop_plain_indexes(db, ("experiments_decision", "experiments_reward"))
        span_us = scale.days * 86_400 * 1_000_000
        t0 = time.perf_counter()
        for experiment_id in experiments:
            arms = [row[0] for row in db.execute(_ARMS, [experiment_id])]
            rows["experiments_decision"] += db.execute(
                _DECISIONS, {**_common(experiment_id, arms, start), "count": decisions, "step": span_us // decisions}
            ).rowcount
        timings["decisions_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        versions = {}
        for experiment_id in experiments:
            arms = [row[0] for row in db.execute(_ARMS, [experiment_id])]
            base = _one(db, "SELECT version FROM experiments_policystate WHERE experiment_id = %s", [experiment_id])[0]
            versions[experiment_id] = base
            thresholds = [int(m * 1000) for m in MEANS]
            stored = db.execute(
                _REWARDS,
                {
                    **_common(experiment_id, arms, start),
                    "count": rewards,
                    "step": span_us // decisions,
                    "base": base,
                    "batch": LEARNING_BATCH,
                    "thresholds": thresholds,
                },
            ).rowcount
            rows["experiments_reward"] += stored
            rows["experiments_rewardkey"] += stored
        timings["rewards_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        minutes = (scale.days - 1) * 24 * 60  # the last day's are there already
        for experiment_id in experiments:
            rows["experiments_allocationsnapshot"] += db.execute(
                _SNAPSHOTS, {"experiment": experiment_id, "days_ago": scale.days, "minutes": minutes, "series": _SERIES}
            ).rowcount
        rows["experiments_auditentry"] += db.execute(
            _AUDIT, {"experiment": experiments[0], "start": start, "count": scale.audit, "days": scale.days}
        ).rowcount
        timings["snapshots_and_audit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for definition in indexes:
            db.execute(definition)
        timings["indexes_s"] = time.perf_counter() - t0
        invalid = db.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").fetchall()
        assert not invalid, f"indexes left invalid by the load: {invalid}"
    t0 = time.perf_counter()
    for experiment_id in experiments:
        _checkpoint_loaded(experiment_id, versions[experiment_id], rewards)
    timings["states_s"] = time.perf_counter() - t0
    with psycopg.connect(running.database_url, autocommit=True) as db:
        t0 = time.perf_counter()
        db.execute("VACUUM ANALYZE")  # what autovacuum would have done over the month
        timings["vacuum_s"] = time.perf_counter() - t0
        # And the month's checkpoints: otherwise the load's dirty pages are written out
        # during the measurements that follow.
        t0 = time.perf_counter()
        db.execute("CHECKPOINT")
        timings["checkpoint_s"] = time.perf_counter() - t0
    return timings, rows


def _partitions(start: Any) -> None:
    """The month's partitions: the ledgers' days and the snapshots' months (beat made them as
    the days came)."""
    from datetime import UTC, datetime

    from mabdash.experiments.services.partitions import SCHEMES, partitions_create

    for scheme in SCHEMES:
        partitions_create(start.astimezone(UTC).date(), datetime.now(UTC).date(), scheme)


def _drop_plain_indexes(db: Any, tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes of ``tables`` that back no constraint; return their definitions."""
    rows = db.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        [list(tables)],
    ).fetchall()
    for name, _ in rows:
        db.execute(f'DROP INDEX "{name}"')
    # A partitioned table's index is listed as "ON ONLY <parent>": recreated as listed, it
    # would be an empty, invalid parent index that no partition has.
    return [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in rows]


def _one(db: Any, sql: str, params: list[Any]) -> tuple[Any, ...]:
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return tuple(row)


def _common(experiment_id: int, arms: list[int], start: Any) -> dict[str, Any]:
    return {"experiment": experiment_id, "arms": arms, "k": len(arms), "start": start}


_ARMS = "SELECT id FROM experiments_arm WHERE experiment_id = %s ORDER BY position"
# Ids as long as real signed decision ids (71 characters), unique per experiment.
_DECISION_ID = (
    "'LH' || lpad(%(experiment)s::text, 5, '0') || lpad(n::text, 12, '0') || md5(n::text) || 'pad-pad-pad-pad-pad-'"
)
_DECISIONS = (
    "INSERT INTO experiments_decision (decision_id, experiment_id, arm_id, propensity, policy_version, served_by, "
    f"created_at) SELECT {_DECISION_ID}, %(experiment)s, (%(arms)s::bigint[])[1 + n %% %(k)s], 1.0 / %(k)s, "
    "n / 5000, 'policy', %(start)s + n * %(step)s * interval '1 microsecond' FROM generate_series(0::bigint, %(count)s - 1) n"
)
# Reward n belongs to decision n: same arm, received 30 s after the decision, learned at
# version base + 1 + n / batch. Its value is a deterministic function of n and the arm
# (_values computes the same in numpy for the state). Its event id begins with the decision's
# millisecond, as the UUIDv7 ids the server and the Python client make do (32 hex digits; the
# rest unique per experiment).
_EVENT_ID = (
    "lpad(to_hex((extract(epoch FROM %(start)s + n * %(step)s * interval '1 microsecond') * 1000)::bigint), 12, '0')"
    " || '7' || lpad(to_hex(%(experiment)s::int), 4, '0') || lpad(to_hex(n), 15, '0')"
)
# Each reward with its idempotency key, in one statement as ingestion writes them (a duplicate
# event id fails the load, as it would fail ingestion).
_REWARDS = (
    "WITH r AS (INSERT INTO experiments_reward (event_id, experiment_id, arm_id, decision_id, value, trials, decided_at, "
    f"received_at, learn, applied_version) SELECT {_EVENT_ID}, %(experiment)s, "
    f"(%(arms)s::bigint[])[1 + n %% %(k)s], {_DECISION_ID}, "
    "CASE WHEN (n * 2654435761) %% 1000 < (%(thresholds)s::int[])[1 + n %% %(k)s] THEN 1 ELSE 0 END, 1, "
    "%(start)s + n * %(step)s * interval '1 microsecond', "
    "%(start)s + n * %(step)s * interval '1 microsecond' + interval '30 seconds', true, "
    "%(base)s + 1 + n / %(batch)s FROM generate_series(0::bigint, %(count)s - 1) n "
    "RETURNING experiment_id, event_id, received_at) "
    "INSERT INTO experiments_rewardkey (experiment_id, event_id, received_at) SELECT * FROM r"
)
_SERIES = json.dumps(
    {
        "allocation": [0.2, 0.5, 0.3],
        "effective": [0.2, 0.5, 0.3],
        "served": [1000, 2500, 1500],
        "reward_counts": [600, 1500, 900],
        "reward_sums": [180, 750, 360],
        "means": [0.3, 0.5, 0.4],
        "lower": [0.27, 0.48, 0.37],
        "upper": [0.33, 0.52, 0.43],
    },
    separators=(",", ":"),
)
_SNAPSHOTS = (
    "INSERT INTO experiments_allocationsnapshot (experiment_id, created_at, policy_version, series) "
    "SELECT %(experiment)s, now() - %(days_ago)s * interval '1 day' + m * interval '1 minute', m, %(series)s "
    "FROM generate_series(0, %(minutes)s - 1) m"
)
_AUDIT = (
    "INSERT INTO experiments_auditentry (experiment_id, actor, kind, summary, reason, evidence, created_at) "
    "SELECT %(experiment)s, 'olivia', 'action.pin', 'Pinned arm 1 for an investigation.', 'investigation', "
    "'{}'::jsonb, %(start)s + n * (%(days)s * interval '1 day' / %(count)s) FROM generate_series(1, %(count)s) n"
)


def _values(count: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Arm positions and values of the loaded rewards, exactly as _REWARDS computes them."""
    n = np.arange(count, dtype=np.int64)
    positions = n % k
    thresholds = np.array([int(m * 1000) for m in MEANS], dtype=np.int64)[positions]
    return positions, ((n * 2654435761) % 1000 < thresholds).astype(float)


def _checkpoint_loaded(experiment_id: int, base_version: int, rewards: int) -> None:
    """The state after learning the loaded rewards, written and checkpointed (as beat would)."""
    import math

    from mabdash.experiments.models import PolicyCheckpoint, PolicyState
    from mabdash.experiments.services.learning import policy_session

    positions, values = _values(rewards, len(MEANS))
    with policy_session(experiment_id) as session:
        policy = session.policy
        for start in range(0, rewards, 1_000_000):
            policy.update(positions[start : start + 1_000_000].tolist(), values[start : start + 1_000_000].tolist())
        version = base_version + math.ceil(rewards / LEARNING_BATCH)
        session.replace(policy, version, session.state.applied_count + rewards)
    live = PolicyState.objects.get(experiment_id=experiment_id)
    PolicyCheckpoint.objects.create(
        experiment_id=experiment_id,
        version=live.version,
        state=live.state,
        applied_count=live.applied_count,
        reason="bench-load",
    )


# --------------------------------------------------------------------------- sizes, retention
def sizes(database_url: str) -> dict[str, dict[str, float]]:
    import psycopg

    result = {}
    with psycopg.connect(database_url, autocommit=True) as db:
        for table in TABLES:
            rows = _one(db, f"SELECT count(*) FROM {table}", [])[0]
            table_bytes, index_bytes = _one(  # a partitioned table: the sum of its partitions
                db,
                "SELECT sum(pg_table_size(r))::bigint, sum(pg_indexes_size(r))::bigint FROM "
                "(SELECT relid AS r FROM pg_partition_tree(%s) UNION SELECT %s::regclass) AS tree",
                [table, table],
            )
            result[table] = {"rows": rows, "table_bytes": table_bytes, "index_bytes": index_bytes}
    return result


def retention_day(days: int) -> dict[str, Any]:
    """Time a retention run that archives the oldest day of the measured experiment."""
    from django.conf import settings

    from mabdash.experiments.models import Experiment
    from mabdash.experiments.services.retention import retention_apply

    settings.MABDASH["ARCHIVE_DIR"] = Path(tempfile.mkdtemp(prefix="mabdash-longhaul-archive-"))
    experiment = Experiment.objects.get(slug="bench")
    experiment.retention_days = days - 1
    experiment.save(update_fields=["retention_days"])
    start = time.perf_counter()
    result = retention_apply(experiment.pk)
    seconds = time.perf_counter() - start
    assert result is not None
    archive_bytes = sum(f.stat().st_size for f in result.archive.iterdir())
    return {
        "seconds": seconds,
        "decisions": result.decisions,
        "rewards": result.rewards,
        "archive_bytes": archive_bytes,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--decide-rate", type=float, default=300.0, help="open-loop decide rate (requests/s)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    results: dict[str, Any] = {"scale": args.scale, "decide_rate": args.decide_rate, **asdict(scale)}
    with deployment("longhaul") as running:
        _django(running.database_url)
        from mabdash.accounts.services import user_create

        user_create(username="longhaul", password="longhaul-password-1", role="viewer")
        admin = Client(running.url, running.stack.api_key("longhaul-admin", "--role", "admin", "--all-experiments"))
        prepare(running, scale, admin)
        print("on empty tables …", flush=True)
        results["empty"] = measure(running, scale, args.decide_rate)
        results["empty_sizes"] = sizes(running.database_url)
        print(f"loading a month ({scale.decisions:,} decisions, {scale.rewards:,} rewards) …", flush=True)
        results["load"], results["loaded_rows"] = load(running, scale)
        print(f"  loaded in {sum(results['load'].values()):.0f} s: {results['load']}", flush=True)
        print("on the loaded month …", flush=True)
        results["loaded"] = measure(running, scale, args.decide_rate)
        results["loaded_sizes"] = sizes(running.database_url)
        print("retention of one day …", flush=True)
        results["retention_day"] = retention_day(scale.days)
    _print(results)
    if args.json:
        results_write(args.json, results)
    return results


def figure_rows(results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(figure, on empty tables, on the loaded month) for every compared figure."""
    empty, loaded = results["empty"], results["loaded"]
    return [
        ("decide p50 ms", empty["decide"]["p50_ms"], loaded["decide"]["p50_ms"]),
        ("decide p99 ms", empty["decide"]["p99_ms"], loaded["decide"]["p99_ms"]),
        ("batched rewards/s (3 clients × 1,000)", empty["batched_rewards_per_s"], loaded["batched_rewards_per_s"]),
        ("reward → decide lag p50 s", empty["lag"]["p50_s"], loaded["lag"]["p50_s"]),
        ("reward → decide lag p99 s", empty["lag"]["p99_s"], loaded["lag"]["p99_s"]),
        ("experiment data endpoint ms (360 points)", empty["data_endpoint_ms"], loaded["data_endpoint_ms"]),
        (f"overview ms ({results['experiments']} experiments)", empty["overview_ms"], loaded["overview_ms"]),
        ("claim of 5,000 pending rewards ms", empty["claim_5000_ms"], loaded["claim_5000_ms"]),
        ("`rebuild_policy_state` s", empty["rebuild"]["seconds"], loaded["rebuild"]["seconds"]),
    ]


def _print(results: dict[str, Any]) -> None:
    print(f"{'figure':<42}{'empty':>12}{'loaded':>12}{'ratio':>8}")
    for name, before, after in figure_rows(results):
        print(f"{name:<42}{before:>12.3f}{after:>12.3f}{after / before if before else float('nan'):>8.2f}")
    print(json.dumps({"load": results["load"], "retention_day": results["retention_day"]}, indent=1))
    for table, size in results["loaded_sizes"].items():
        print(
            f"{table}: {size['rows']:,} rows, {size['table_bytes'] / 2**20:,.0f} MiB + {size['index_bytes'] / 2**20:,.0f} MiB indexes"
        )


if __name__ == "__main__":
    main()
