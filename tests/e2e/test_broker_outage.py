"""Self-healing: Redis (broker and cache) goes away while the worker is applying a backlog of
100,000 rewards; clients keep posting; Redis comes back. With no manual step the learned state
catches up and equals the ledger — whatever the outage did to the worker
process, the supervisor (``mabdash.processes``, as in ``make run``) starts it again."""

from __future__ import annotations

import time

import pytest

from mabdash.devstack import Client, create_experiment, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

BACKLOG = 100_000


def test_redis_outage_in_the_middle_of_a_backlog_heals_without_a_manual_step(production_stack, redis_server):
    stack = production_stack
    # Small batches make the backlog take several seconds of learning, so Redis dies mid-run.
    stack.env.update({"MABDASH_LEARNING_BATCH": "500", "MABDASH_LEARNING_MAX_PER_TASK": "5000"})
    web = stack.start_web(workers=2, restart=True)
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "heal")
    client = Client(web, stack.api_key("server", "--experiment", "heal"))
    for start in range(0, BACKLOG, 10_000):
        batch = [
            {"experiment": "heal", "arm": i % 3, "value": i % 2, "event_id": f"b-{i}"}
            for i in range(start, start + 10_000)
        ]
        assert client.post("/api/v1/rewards/", {"rewards": batch}).json()["accepted"] == 10_000
    stack.start_worker(restart=True)
    stack.start_beat(restart=True)
    wait_for(lambda: client.state("heal")["applied_rewards"] > 0, 60, "learning to start")
    assert client.state("heal")["pending_rewards"] > 0  # Redis goes away in the middle of the backlog

    redis_server.stop()
    latencies = []
    for i in range(200):  # clients keep posting (and deciding) during the outage
        started = time.monotonic()
        response = client.post(
            "/api/v1/rewards/", {"experiment": "heal", "arm": i % 3, "value": 1, "event_id": f"o-{i}"}
        )
        latencies.append(time.monotonic() - started)
        assert response.status_code == 201, response.text
        assert client.post("/api/v1/experiments/heal/decide/").status_code == 200
    print(
        f"reward POST during the outage: median {sorted(latencies)[100] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    time.sleep(3)

    redis_server.start()  # same port; nobody touches the web, the worker or beat
    restarted = time.monotonic()
    # Healing is the behaviour under test; how fast it catches up depends on the machine (the
    # printed figure), so the bound is generous.
    state = client.wait_until_applied("heal", BACKLOG + 200, timeout=120)
    print(f"caught up {time.monotonic() - restarted:.1f} s after Redis was back")
    assert sum(arm["rewards"] for arm in state["arms"]) == BACKLOG + 200
    assert "identical" in stack.manage("rebuild_policy_state", "heal").stdout
    restarts = stack.supervisor.children["worker"].restarts
    print(f"worker restarts by the supervisor: {restarts}")
