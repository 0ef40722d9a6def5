"""Prometheus instruments recorded by the request handlers (prometheus_client).

Each web process records them; with several gunicorn workers they are aggregated through
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it up). ``mabdash.monitoring`` serves
them at ``/metrics`` with the experiment gauges.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

DECIDE_SECONDS = Histogram("mabdash_decide_seconds", "Time to answer a decide request.", buckets=LATENCY_BUCKETS)
REWARD_REQUEST_SECONDS = Histogram(
    "mabdash_reward_request_seconds", "Time to answer a reward POST (one or a batch).", buckets=LATENCY_BUCKETS
)
REWARDS = Counter("mabdash_rewards", "Reward items by outcome.", ["outcome"])
