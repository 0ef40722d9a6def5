"""Service benchmarks: decide latency and throughput, reward ingestion, reward-to-decide lag.

    python -m bench.service [--quick] [--json PATH]

Needs DATABASE_URL pointing at a PostgreSQL server (a scratch database is created and
dropped) and the redis-server binary (a private instance is started). It runs the real
deployment — gunicorn with 3 sync workers, a Celery worker and beat — and measures, each
next to a baseline taken in the same run:

- decide with an open-loop generator (bench/loadgen.py) at 300 requests/s, and the highest
  rate whose p99 stays ≤ 50 ms; baseline: a trivial view behind the same middleware;
- single reward POSTs/s and batched rewards/s (each acknowledged only once committed);
  baselines: committed one-row INSERTs from as many connections, and a raw PostgreSQL COPY
  of the same rows;
- the lag from a reward's acknowledgement to a decide answered with the policy version that
  learned it, at half the measured batched ingest rate.

The load generator runs on the same 2-core machine as the server, so it competes for CPU:
the ratios to the baselines are the meaningful figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.deployment import deployment
from bench.loadgen import build_request, run_load
from bench.results_file import results_write
from mabdash.devstack import free_port, wait_for

RATES = (200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000, 3500, 4000)


def _client(url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)


def _post(connection: http.client.HTTPConnection, path: str, key: str, body: Any) -> tuple[int, Any]:
    connection.request(
        "POST",
        path,
        body=json.dumps(body),
        headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


def max_sustained(host: str, port: int, raw: bytes, seconds: float) -> tuple[float, list[dict]]:
    """The highest rate in ``RATES`` whose p99 ≤ 50 ms with no errors."""
    best, steps = 0.0, []
    for rate in RATES:
        result = run_load(host, port, raw, rate, seconds).summary()
        steps.append(result)
        if result["errors"] or result["p99_ms"] > 50:
            break
        best = rate
        time.sleep(1)
    return best, steps


def wrk_ceiling(url: str, path: str, method: str, headers: dict[str, str], seconds: float) -> float | None:
    """Requests/s that wrk (closed loop, 2 threads, 8 connections) gets out of the server."""
    if shutil.which("wrk") is None:
        return None
    script = Path(tempfile.mkdtemp()) / "request.lua"
    lines = [f'wrk.method = "{method}"'] + [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{int(seconds)}s", "-s", str(script), url + path],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    match = re.search(r"Requests/sec:\s+([0-9.]+)", result.stdout)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if match is None or non_2xx:
        raise RuntimeError(f"wrk failed or got errors:\n{result.stdout}{result.stderr}")
    return float(match.group(1))


def bare_django_ceiling(seconds: float) -> float | None:
    """wrk's figure for bench/bare_django.py under gunicorn with 3 sync workers."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.bare_django:application",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        # Elsewhere than the project folder, so gunicorn does not load mabdash's gunicorn.conf.py.
        cwd=tempfile.gettempdir(),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/noop/"), 30, "the bare Django server")
        return wrk_ceiling(url, "/noop/", "GET", {}, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _in_threads(worker: Callable[[int], None], count: int) -> float:
    """Run ``worker(0)`` … ``worker(count - 1)`` in threads; return the seconds they took."""
    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start


def closed_loop(url: str, key: str, body: Any, clients: int, seconds: float) -> tuple[int, float]:
    """Items acknowledged per second by ``clients`` threads posting ``body`` back to back."""
    items = len(body["rewards"]) if isinstance(body, dict) and "rewards" in body else 1
    done = [0] * clients
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        connection = _client(url)
        while time.monotonic() < deadline:
            status, answer = _post(connection, "/api/v1/rewards/", key, body)
            if status in (200, 201):
                done[index] += answer["accepted"] if items > 1 else 1

    elapsed = _in_threads(worker, clients)
    return sum(done), sum(done) / elapsed


REWARD_TABLE = "experiments_reward"
COPY_COLUMNS = "event_id, experiment_id, arm_id, decision_id, value, decided_at, observed_at, received_at, learn"
#: The COPY baselines, from the outer bound to the one that does what ingestion must do.
COPY_KINDS = {
    "temp": "a TEMP table with the reward columns and a primary key (no write-ahead log: an outer bound)",
    "columns": "a logged table with the reward table's columns and primary key, no other index",
    "indexed_with_keys": (
        "a logged copy of the reward table and of its key table (the idempotency key, written with every "
        "reward): their columns, constraints and every index"
    ),
}
KEY_TABLE = "experiments_rewardkey"


def copy_baseline(database_url: str, rows: int, kind: str) -> float:
    """Rows/s of a COPY of reward rows (as ingestion stores them) into a table of ``kind``, committed."""
    import psycopg

    with psycopg.connect(database_url, autocommit=False) as conn:
        if kind == "temp":
            conn.execute(f"CREATE TEMP TABLE copy_bench (LIKE {REWARD_TABLE} INCLUDING DEFAULTS)")
            conn.execute("ALTER TABLE copy_bench ADD PRIMARY KEY (id)")
        elif kind == "columns":
            conn.execute(f"CREATE TABLE copy_bench (LIKE {REWARD_TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY)")
            conn.execute("ALTER TABLE copy_bench ADD PRIMARY KEY (id)")
        else:
            conn.execute(f"CREATE TABLE copy_bench (LIKE {REWARD_TABLE} INCLUDING ALL)")
            # LIKE copies no foreign keys; ingestion checks both for every row.
            conn.execute("ALTER TABLE copy_bench ADD FOREIGN KEY (experiment_id) REFERENCES experiments_experiment(id)")
            conn.execute("ALTER TABLE copy_bench ADD FOREIGN KEY (arm_id) REFERENCES experiments_arm(id)")
            conn.execute(f"CREATE TABLE copy_bench_keys (LIKE {KEY_TABLE} INCLUDING ALL)")
            conn.execute(
                "ALTER TABLE copy_bench_keys ADD FOREIGN KEY (experiment_id) REFERENCES experiments_experiment(id)"
            )
        first_arm = conn.execute("SELECT experiment_id, id FROM experiments_arm ORDER BY id LIMIT 1").fetchone()
        assert first_arm is not None, "the benchmark experiment has arms"
        experiment_id, arm_id = first_arm
        conn.commit()

        def row(i: int) -> tuple[Any, ...]:
            return (f"copy-{i}", experiment_id, arm_id, f"AQAAcopy{i:012d}", float(i % 2), _STAMP, None, _STAMP, True)

        columns = COPY_COLUMNS
        if kind == "temp":  # a TEMP table made with LIKE has no identity: number the rows
            columns, numbered = f"id, {COPY_COLUMNS}", row
            row = lambda i: (i + 1, *numbered(i))  # noqa: E731
        start = time.perf_counter()
        with conn.cursor().copy(f"COPY copy_bench ({columns}) FROM STDIN") as copy:
            for i in range(rows):
                copy.write_row(row(i))
        if kind == "indexed_with_keys":
            with conn.cursor().copy("COPY copy_bench_keys (experiment_id, event_id, received_at) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((experiment_id, f"copy-{i}", _STAMP))
        conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE copy_bench")
        conn.execute("DROP TABLE IF EXISTS copy_bench_keys")
        conn.commit()
        return rows / elapsed


_STAMP = "2026-11-28T00:00:00Z"


def single_insert_baseline(database_url: str, clients: int, seconds: float) -> float:
    """Committed one-row INSERTs/s by ``clients`` connections (the database's ceiling for
    rewards posted one at a time, each durable before its answer)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE insert_bench (event_id text primary key, arm_id bigint, value float8)")
    done = [0] * clients
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                conn.execute("INSERT INTO insert_bench VALUES (%s, 1, 1.0)", [f"{index}-{done[index]}"])
                done[index] += 1

    elapsed = _in_threads(worker, clients)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE insert_bench")
    return sum(done) / elapsed


# The reward's key gives its day, which finds it in that day's partition: one probe of the key
# table's primary key and one of the day's index, however long the ledger. (By experiment and
# event id alone the probe read every stored reward of the experiment: over a loaded month it
# took seconds, and that time was counted as lag.)
_APPLIED_VERSION = (
    "SELECT r.applied_version FROM experiments_rewardkey k JOIN experiments_reward r "
    "ON r.experiment_id = k.experiment_id AND r.received_at = k.received_at AND r.event_id = k.event_id "
    "WHERE k.experiment_id = %s AND k.event_id = %s"
)


def lag(url: str, key: str, database_url: str, slug: str, rate: float, seconds: float) -> dict[str, float]:
    """Reward acknowledgement → first decide that serves a policy which learned it."""
    import psycopg

    batch = 100
    interval = batch / rate
    lags: list[float] = []
    post, probe = _client(url), _client(url)
    db = psycopg.connect(database_url, autocommit=True)
    experiment_row = db.execute("SELECT id FROM experiments_experiment WHERE slug = %s", [slug]).fetchone()
    assert experiment_row is not None, f"no experiment {slug}"
    # Event ids unique to this call: a second measurement on the same experiment (the long
    # haul measures before and after loading) would otherwise post duplicates, which are
    # never learned, and find the first call's rewards already applied.
    run = uuid.uuid4().hex[:8]
    end = time.monotonic() + seconds
    sequence = 0
    next_send = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        if now < next_send:
            time.sleep(next_send - now)
        next_send += interval
        sequence += 1
        tag = f"lag-{run}-{sequence}"
        body = {
            "rewards": [
                {"experiment": slug, "arm": i % 3, "value": i % 2, "event_id": f"{tag}-{i}"} for i in range(batch)
            ]
        }
        status, answer = _post(post, "/api/v1/rewards/", key, body)
        acked = time.monotonic()
        if status == 200:
            outcomes = {item["status"] for item in answer["results"]}
            assert outcomes == {"accepted"}, f"the lag's rewards must all be new: {outcomes}"
        if status != 200 or sequence % 5:
            continue  # measure every fifth batch, keep the load steady
        version = None
        while version is None and time.monotonic() - acked < 10:
            row = db.execute(_APPLIED_VERSION, [experiment_row[0], f"{tag}-{batch - 1}"]).fetchone()
            version = row[0] if row else None
            if version is None:
                time.sleep(0.005)
        while version is not None and time.monotonic() - acked < 10:
            _, decision = _post(probe, f"/api/v1/experiments/{slug}/decide/", key, None)
            if decision["policy_version"] >= version:
                lags.append(time.monotonic() - acked)
                break
            time.sleep(0.005)
    db.close()
    values = np.array(lags)
    return {
        "samples": len(values),
        "p50_s": float(np.percentile(values, 50)),
        "p99_s": float(np.percentile(values, 99)),
        "max_s": float(values.max()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    seconds = 4.0 if args.quick else 10.0
    results: dict[str, Any] = {}
    with deployment("service", env={"MABDASH_BENCH_ENDPOINTS": "1"}) as running:
        url, key = running.url, running.client_key
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        decide = build_request(host, port, "POST", "/api/v1/experiments/bench/decide/", headers)
        noop = build_request(host, port, "GET", "/bench/noop/", {})
        run_load(host, port, decide, 200, 2)  # warm every worker's caches
        run_load(host, port, noop, 200, 2)
        print("decide and baseline at 300 requests/s …", flush=True)
        results["decide_300"] = run_load(host, port, decide, 300, seconds).summary()
        results["noop_300"] = run_load(host, port, noop, 300, seconds).summary()
        print("highest rates with p99 ≤ 50 ms …", flush=True)
        results["decide_max_rate"], results["decide_steps"] = max_sustained(host, port, decide, seconds / 2)
        results["noop_max_rate"], results["noop_steps"] = max_sustained(host, port, noop, seconds / 2)
        print("throughput ceilings with wrk …", flush=True)
        results["decide_wrk_rps"] = wrk_ceiling(
            url, "/api/v1/experiments/bench/decide/", "POST", {"Authorization": f"Api-Key {key}"}, seconds
        )
        results["noop_wrk_rps"] = wrk_ceiling(url, "/bench/noop/", "GET", {}, seconds)
        results["bare_django_wrk_rps"] = bare_django_ceiling(seconds)
        print("reward ingestion …", flush=True)
        single = {"experiment": "bench", "arm": 1, "value": 1}
        results["single_rewards"] = dict(
            zip(("count", "per_s"), closed_loop(url, key, single, 6, seconds), strict=True)
        )
        batch = {"rewards": [{"experiment": "bench", "arm": i % 3, "value": i % 2} for i in range(1000)]}
        results["batched_rewards"] = dict(
            zip(("count", "per_s"), closed_loop(url, key, batch, 3, seconds), strict=True)
        )
        results["copy_baselines_rows_per_s"] = {
            kind: copy_baseline(running.database_url, 200_000, kind) for kind in COPY_KINDS
        }
        results["insert_baseline_per_s"] = single_insert_baseline(running.database_url, 6, seconds)
        half = results["batched_rewards"]["per_s"] / 2
        print(f"reward-to-decide lag at {half:,.0f} rewards/s …", flush=True)
        results["lag"] = {"rate": half, **lag(url, key, running.database_url, "bench", half, seconds * 2)}
        results["versions"] = versions(running.database_url, running.redis_url)
    print(json.dumps({k: v for k, v in results.items() if not k.endswith("_steps")}, indent=1))
    if args.json:
        results_write(args.json, results)
    return results


def versions(database_url: str, redis_url: str) -> dict[str, str]:
    """What the figures were measured with."""
    from importlib.metadata import version

    import psycopg
    import redis

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        postgres = row[0].split()[0] if row else "unknown"
    return {
        "python": sys.version.split()[0],
        **{name: version(name) for name in ("django", "djangorestframework", "gunicorn", "celery", "psycopg")},
        "postgresql": postgres,
        "redis": redis.Redis.from_url(redis_url).info("server")["redis_version"],
    }


if __name__ == "__main__":
    main()
