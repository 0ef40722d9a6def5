"""Each reward counts exactly once, whatever happens to workers and clients.

Production stack (PostgreSQL + a private Redis). Every test ends by comparing the state
with the ledger: the exact aggregate of accepted rewards, and an identical rebuild.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mabdash.devstack import Client, create_experiment, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis]


def reward_batches(slug: str, n: int, seed: int, size: int = 10_000) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, 3, n).tolist()
    values = (rng.random(n) < 0.4).astype(int).tolist()
    items = [
        {"experiment": slug, "arm": a, "value": v, "event_id": f"{slug}-{seed}-{i}"}
        for i, (a, v) in enumerate(zip(arms, values, strict=True))
    ]
    return [items[i : i + size] for i in range(0, n, size)]


def aggregate(batches: list[list[dict]]) -> tuple[list[int], list[float]]:
    counts, sums = [0, 0, 0], [0.0, 0.0, 0.0]
    for batch in batches:
        for item in batch:
            counts[item["arm"]] += 1
            sums[item["arm"]] += item["value"]
    return counts, sums


def assert_state_matches(client: Client, stack, slug: str, batches: list[list[dict]], timeout: float = 90) -> dict:
    counts, sums = aggregate(batches)
    state = client.wait_until_applied(slug, sum(counts), timeout=timeout)
    assert [a["rewards"] for a in state["arms"]] == counts
    assert [a["reward_sum"] for a in state["arms"]] == sums
    assert "identical" in stack.manage("rebuild_policy_state", slug).stdout
    return state


def test_concurrent_duplicate_posts_are_counted_once(production_stack):
    stack = production_stack
    stack.start_worker()
    web = stack.start_web(workers=3)
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "dupes")
    key = stack.api_key("server", "--experiment", "dupes")
    (batch,) = reward_batches("dupes", 1000, seed=1)
    results: list[dict] = []

    def post() -> None:
        response = Client(web, key).post("/api/v1/rewards/", {"rewards": batch})
        assert response.status_code == 200, response.text
        results.append(response.json())

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["accepted"] for r in results) == 1000
    assert sum(r["duplicate"] for r in results) == 7000
    for index in range(1000):  # each item accepted by exactly one of the eight clients
        assert sum(r["results"][index]["status"] == "accepted" for r in results) == 1
    assert_state_matches(Client(web, key), stack, "dupes", [batch])


def test_worker_killed_mid_apply_loses_and_duplicates_nothing(production_stack):
    stack = production_stack
    slow = {"MABDASH_LEARNING_BATCH": "100", "MABDASH_LEARNING_MAX_PER_TASK": "1000000"}
    web = stack.start_web()
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "crash")
    client = Client(web, stack.api_key("server", "--experiment", "crash"))
    batches = reward_batches("crash", 50_000, seed=2)
    for batch in batches:
        assert client.post("/api/v1/rewards/", {"rewards": batch}).json()["accepted"] == len(batch)

    stack.start_worker("doomed", env=slow)
    with stack.database.connect() as db:

        def applying() -> bool:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE %s",
                [stack.database.name, "%UPDATE experiments_reward SET applied_version%"],
            ).fetchone()
            return row[0] > 0

        wait_for(applying, 60, "the worker to be applying rewards", interval=0.005)
        stack.kill("doomed")  # kill -9, mid-transaction
        time.sleep(0.5)
        applied = db.execute("SELECT count(*) FROM experiments_reward WHERE applied_version IS NOT NULL").fetchone()[0]
        state_version = db.execute("SELECT version FROM experiments_policystate").fetchone()[0]
    assert (applied, state_version) == (0, 0)  # the whole apply transaction was rolled back

    stack.start_worker("survivor", env=slow)
    stack.start_beat()  # the killed task's message is not acknowledged; the sweep re-requests it
    state = assert_state_matches(client, stack, "crash", batches)

    # A redelivered or duplicated apply task changes nothing.
    experiment_id = stack.shell(
        "from mabdash.experiments.models import Experiment; print(Experiment.objects.get(slug='crash').pk)"
    )
    stack.shell(
        f"from mabdash.control.tasks import learning_cycle_task as t; [t.delay({experiment_id}) for _ in range(5)]"
    )
    wait_for(lambda: stack.log("survivor").count("learning_cycle_task") >= 5 + 1, 30, "redelivered tasks to run")
    assert client.state("crash")["policy_version"] == state["policy_version"]
    assert "crash: unchanged" in stack.manage("rebuild_policy_state", "--write", "crash").stdout


def test_two_workers_on_one_experiment_count_each_reward_once(production_stack):
    stack = production_stack
    small = {"MABDASH_LEARNING_BATCH": "50", "MABDASH_LEARNING_MAX_PER_TASK": "200"}
    web = stack.start_web(workers=2)
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "pair")
    client = Client(web, stack.api_key("server", "--experiment", "pair"))
    batches = reward_batches("pair", 20_000, seed=3, size=5000)
    for batch in batches:
        client.post("/api/v1/rewards/", {"rewards": batch})
    stack.start_worker("left", env=small)
    stack.start_worker("right", env=small)
    experiment_id = stack.shell(
        "from mabdash.experiments.models import Experiment; print(Experiment.objects.get(slug='pair').pk)"
    )
    # Many apply tasks at once: both workers take some and contend for the experiment's lock.
    stack.shell(
        f"from mabdash.control.tasks import learning_cycle_task as t; [t.delay({experiment_id}) for _ in range(60)]"
    )
    stack.start_beat()
    assert_state_matches(client, stack, "pair", batches)
    for worker in ("left", "right"):
        assert "learning_cycle_task" in stack.log(worker), f"{worker} applied nothing"
