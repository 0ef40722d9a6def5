"""Broker outages and scale-out: rewards are never refused or lost because Celery is
down, and every web process serves a new allocation within a second of its commit."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from mabdash.devstack import Client, create_experiment

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis]


def test_rewards_are_accepted_while_the_broker_is_down_and_learned_after(production_stack, redis_server):
    stack = production_stack
    stack.start_worker()
    stack.start_beat()
    web = stack.start_web()
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "outage")
    client = Client(web, stack.api_key("server", "--experiment", "outage"))
    assert client.post("/api/v1/rewards/", {"experiment": "outage", "arm": 0, "value": 1}).status_code == 201
    client.wait_until_applied("outage", 1)

    redis_server.stop()  # broker and cache gone
    statuses = [
        client.post(
            "/api/v1/rewards/", {"experiment": "outage", "arm": i % 3, "value": i % 2, "event_id": f"o-{i}"}
        ).status_code
        for i in range(100)
    ]
    assert statuses == [201] * 100
    decision = client.post("/api/v1/experiments/outage/decide/")
    assert decision.status_code == 200  # serving does not depend on the broker either
    state = client.state("outage")
    assert (state["applied_rewards"], state["pending_rewards"]) == (1, 100)

    redis_server.start()  # same port: workers, beat and web reconnect on their own
    state = client.wait_until_applied("outage", 101, timeout=120)
    assert [a["rewards"] for a in state["arms"]] == [1 + 34, 33, 33]
    assert "identical" in stack.manage("rebuild_policy_state", "outage").stdout


def test_a_second_web_process_serves_a_new_allocation_within_a_second(production_stack):
    stack = production_stack
    stack.start_worker()
    web_a = stack.start_web("web-a")
    web_b = stack.start_web("web-b")
    create_experiment(Client(web_a, stack.api_key("admin", "--role", "admin", "--all-experiments")), "scale")
    key = stack.api_key("server", "--experiment", "scale")
    a, b = Client(web_a, key), Client(web_b, key)
    delays = []
    for round_number in range(1, 4):
        before = b.post("/api/v1/experiments/scale/decide/").json()["policy_version"]
        assert a.post("/api/v1/rewards/", {"experiment": "scale", "arm": 1, "value": 1}).status_code == 201
        while True:
            seen = b.post("/api/v1/experiments/scale/decide/").json()["policy_version"]
            if seen > before:
                seen_at = time.time()
                break
            time.sleep(0.02)
        committed_at = datetime.fromisoformat(a.state("scale")["updated_at"].replace("Z", "+00:00")).timestamp()
        delays.append(seen_at - committed_at)
        assert seen == round_number
    assert max(delays) <= 1.0, delays
