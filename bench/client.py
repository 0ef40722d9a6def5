"""The Python client against the real deployment: local and remote decide, batched rewards, lag.

    python -m bench.client [--quick] [--json PATH]

Needs DATABASE_URL pointing at a PostgreSQL server (a scratch database is created and
dropped) and the redis-server binary. Runs gunicorn (3 sync workers), a Celery worker and
beat, and measures, each next to a baseline taken in the same run:

- local decide (``mode="local"``), each call timed, at 2,000 decisions/s from one thread;
  floor: ``policies`` ``choose`` of a Thompson policy alone, in the same process;
- remote decide (one HTTP call each), sequential;
- rewards/s from one client process through its batching (``batch_size=2000``; ``reward()``
  until ``flush()`` says delivered); ceiling: the batched endpoint posted directly by 3 closed-loop clients
  with 1,000 rewards per request (the figure of ``bench.service``);
- the lag from ``reward()`` to a local decision drawn from the allocation that learned it.

The load runs on the same 2-core machine as the server: the ratios are the meaningful figures.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from mabdash_client import Client as MabdashClient

import policies
from bench.deployment import deployment
from bench.results_file import results_write
from bench.service import closed_loop

#: Rewards per request from the client (its default is 500; the server takes 10,000).
BATCH = 2_000


def _percentiles(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1e6
    return {
        "count": len(seconds),
        "p50_us": round(float(np.percentile(values, 50)), 2),
        "p99_us": round(float(np.percentile(values, 99)), 2),
    }


def choose_floor(decisions: int) -> dict[str, float]:
    """``policies`` choose alone: the least a decision can cost in Python."""
    policy = policies.make_policy("thompson", 3, {}, seed=0)
    rng = np.random.default_rng(0)
    policy.choose(rng)
    times = []
    for _ in range(decisions):
        started = time.perf_counter()
        policy.choose(rng)
        times.append(time.perf_counter() - started)
    return _percentiles(times)


def local_decide(client: MabdashClient, rate: float, seconds: float) -> tuple[dict[str, float], list[Any]]:
    """Decisions paced at ``rate``/s (a model server's traffic), each call timed."""
    client.decide("bench")  # the first call fetches the snapshot
    times, decisions = [], []
    interval = 1 / rate
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        while time.perf_counter() < start + i * interval:
            pass  # paced by spinning: a sleep between calls measures a cold cache and CPU
        began = time.perf_counter()
        decision = client.decide("bench")
        times.append(time.perf_counter() - began)
        decisions.append(decision)
    return _percentiles(times), decisions


def remote_decide(client: MabdashClient, count: int) -> dict[str, float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        client.decide("bench")
        times.append(time.perf_counter() - began)
    return _percentiles(times)


def rewards_per_second(client: MabdashClient, decisions: list[Any], count: int) -> dict[str, float]:
    ids = [d.decision_id for d in decisions if d.decision_id]
    started = time.perf_counter()
    for i in range(count):
        client.reward(ids[i % len(ids)], value=float(i % 2), event_id=f"bench-{i}")
    report = client.flush(timeout=300)
    elapsed = time.perf_counter() - started
    assert report.complete, report
    return {"count": count, "per_s": round(count / elapsed, 1)}


def lag(client: MabdashClient, decisions: list[Any], samples: int) -> dict[str, float]:
    """From ``reward()`` of a batch to a local decision whose policy version learned it."""
    ids = [d.decision_id for d in decisions if d.decision_id]
    lags = []
    for sample in range(samples):
        version = client.decide("bench").policy_version
        started = time.perf_counter()
        for i in range(100):
            client.reward(ids[i], value=1.0, event_id=f"lag-{sample}-{i}")
        while client.decide("bench").policy_version <= version:
            time.sleep(0.001)
            if time.perf_counter() - started > 30:
                raise SystemExit("bench.client: no new allocation within 30 s")
        lags.append(time.perf_counter() - started)
        time.sleep(0.2)
    values = np.asarray(lags)
    return {
        "samples": samples,
        "p50_s": round(float(np.percentile(values, 50)), 3),
        "p99_s": round(float(np.percentile(values, 99)), 3),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    seconds = 4.0 if args.quick else 10.0
    results: dict[str, Any] = {}
    with deployment("client") as running:
        url, key = running.url, running.client_key
        print("policies choose alone (the floor) …", flush=True)
        results["choose_floor"] = choose_floor(20_000)
        with MabdashClient(url, key, mode="local", block_size=10_000, batch_size=BATCH) as client:
            print("local decide at 2,000/s …", flush=True)
            results["local_decide"], decisions = local_decide(client, 2_000, seconds)
            results["local_decide"]["remote_fallbacks"] = client.stats["decided_remote_fallback"]
            print("rewards through the client's batching …", flush=True)
            results["client_rewards"] = rewards_per_second(client, decisions, int(20_000 * seconds))
            print("reward() → new allocation in the client …", flush=True)
            results["lag"] = lag(client, decisions, 10 if args.quick else 30)
        with MabdashClient(url, key, mode="remote") as client:
            print("remote decide …", flush=True)
            client.decide("bench")
            results["remote_decide"] = remote_decide(client, int(200 * seconds))
        print("the batched endpoint's own ceiling …", flush=True)
        batch = {"rewards": [{"experiment": "bench", "arm": i % 3, "value": i % 2} for i in range(1000)]}
        count, per_s = closed_loop(url, key, batch, 3, seconds)
        results["endpoint_rewards"] = {"count": count, "per_s": round(per_s, 1)}
    print(json.dumps(results, indent=1))
    if args.json:
        results_write(args.json, results)
    return results


if __name__ == "__main__":
    main()
