"""The database restarts under load: decide keeps answering from the last known allocation,
reward posts answer 503 with Retry-After (never a 500, never a silent drop) and succeed on
retry, and no decision or reward is lost or counted twice. Uses a private PostgreSQL
cluster and Redis; the machine's shared ones are never stopped."""

from __future__ import annotations

import time

import pytest
import requests

from mabdash.devstack import Client, PostgresDatabase, PostgresServer, Stack, create_experiment, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.pgserver, pytest.mark.redis]


@pytest.fixture
def restartable(tmp_path, redis_server):
    server = PostgresServer()
    server.init()
    server.start()
    database = PostgresDatabase(server.url)
    stack = Stack(tmp_path, database_url=database.url, broker_url=redis_server.url, redis_url=redis_server.url)
    stack.setup()
    yield stack, server
    stack.stop()
    server.close()


def test_decide_survives_a_database_restart_and_rewards_are_never_lost(restartable):
    stack, server = restartable
    stack.start_worker()
    stack.start_beat()
    web = stack.start_web(workers=1)
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "outage")
    client = Client(web, stack.api_key("server", "--experiment", "outage"))
    before = [client.post("/api/v1/experiments/outage/decide/").json() for _ in range(20)]
    client.post(
        "/api/v1/rewards/",
        {"rewards": [{"decision_id": d["decision_id"], "value": 1, "event_id": f"a{i}"} for i, d in enumerate(before)]},
    )
    version = client.wait_until_applied("outage", 20)["policy_version"]

    def serves_new_version() -> bool:
        before.append(client.post("/api/v1/experiments/outage/decide/").json())  # every one is served
        return before[-1]["policy_version"] == version

    wait_for(serves_new_version, 10, "the web process to serve the new allocation")

    server.stop()
    time.sleep(1.5)  # past the serving refresh: decide now finds the database gone
    during = []
    for _ in range(30):
        response = client.post("/api/v1/experiments/outage/decide/")
        assert response.status_code == 200, response.text
        during.append(response.json())
    assert {d["policy_version"] for d in during} == {version}  # the last known allocation
    batch = {
        "rewards": [{"decision_id": d["decision_id"], "value": 0, "event_id": f"b{i}"} for i, d in enumerate(during)]
    }
    refused = client.post("/api/v1/rewards/", batch)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.json()["detail"] == "The database is unavailable; nothing was stored. Retry later."
    single = client.post("/api/v1/rewards/", {"experiment": "outage", "arm": 0, "value": 1, "event_id": "c0"})
    assert single.status_code == 503
    assert client.get("/api/v1/experiments/outage/state/").status_code == 503
    # Live, and ready: this process serves the experiment from its last known allocation.
    assert requests.get(f"{web}/livez", timeout=10).status_code == 200
    ready = requests.get(f"{web}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "degraded",
        "serving": "last_known",
        "database": "unavailable",
        "cached_experiments": 1,
    }

    server.start()
    retried = wait_for(lambda: (r := client.post("/api/v1/rewards/", batch)).status_code == 200 and r, 60, "a retry")
    assert retried.json()["accepted"] == 30
    state = client.wait_until_applied("outage", 50, timeout=90)
    assert sum(arm["reward_sum"] for arm in state["arms"]) == 20.0  # 20 ones before, 30 zeros after
    # The decisions served during the outage were buffered and written once the database was back.
    served = len(before) + len(during)
    wait_for(lambda: sum(a["served"] for a in client.state("outage")["arms"]) == served, 30, "buffered decisions")
    assert "identical" in stack.manage("rebuild_policy_state", "outage").stdout
