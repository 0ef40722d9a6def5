"""Decide → reward → a real worker learns → state shows exactly what was posted.

Run on both stacks: the embedded default of `make run` must take the same code path as
production."""

from __future__ import annotations

import pytest
import requests

from mabdash.devstack import Client, create_experiment, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(params=["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.redis])])
def stack(request):
    return request.getfixturevalue(f"{request.param}_stack")


def test_rewards_posted_through_the_api_are_learned_exactly(stack):
    stack.env["MABDASH_METRICS_TOKEN"] = "scrape-secret"
    stack.start_worker()
    stack.start_beat()
    web = stack.start_web(workers=2)
    admin = Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments"))
    create_experiment(admin, "e2e")
    client = Client(web, stack.api_key("server", "--experiment", "e2e"))

    decisions = [client.post("/api/v1/experiments/e2e/decide/").json() for _ in range(60)]
    rewards = [
        {"decision_id": d["decision_id"], "value": float(d["arm"] == 2 or i % 3 == 0), "event_id": f"ev-{i}"}
        for i, d in enumerate(decisions)
    ]
    rewards.append({"experiment": "e2e", "arm": 1, "value": 1, "event_id": "ev-free"})
    for reward in rewards[:20]:
        assert client.post("/api/v1/rewards/", reward).status_code == 201
    batch = client.post("/api/v1/rewards/", {"rewards": rewards[20:]}).json()
    assert batch["accepted"] == len(rewards) - 20
    again = client.post("/api/v1/rewards/", {"rewards": rewards}).json()  # client retry: all duplicates
    assert (again["accepted"], again["duplicate"]) == (0, len(rewards))

    arm_of = {d["decision_id"]: d["arm"] for d in decisions}
    expected_counts, expected_sums = [0, 0, 0], [0.0, 0.0, 0.0]
    for reward in rewards:
        arm = arm_of.get(reward.get("decision_id"), reward.get("arm"))
        expected_counts[arm] += 1
        expected_sums[arm] += reward["value"]

    state = client.wait_until_applied("e2e", len(rewards))
    assert [a["rewards"] for a in state["arms"]] == expected_counts
    assert [a["reward_sum"] for a in state["arms"]] == expected_sums
    assert state["policy_version"] >= 1

    served = wait_for(
        lambda: (s := client.state("e2e")) and sum(a["served"] for a in s["arms"]) == 60 and s,
        10,
        "decisions to be written",
    )
    assert [a["served"] for a in served["arms"]] == [sum(d["arm"] == k for d in decisions) for k in range(3)]
    # Metrics add up the decisions of both gunicorn workers.
    metrics = requests.get(f"{web}/metrics", headers={"Authorization": "Bearer scrape-secret"}, timeout=10).text
    assert "mabdash_decide_seconds_count 60.0" in metrics
    assert 'mabdash_pending_rewards{experiment="e2e"} 0.0' in metrics
    rebuild = stack.manage("rebuild_policy_state", "e2e")
    assert (
        f"e2e: identical (version {state['policy_version']}, {len(rewards)} rewards, replayed from version 0)"
        in rebuild.stdout
    )
