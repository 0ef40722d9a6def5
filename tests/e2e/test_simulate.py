"""The live demo: the simulator drives a running server through the public API only."""

from __future__ import annotations

import pytest

from mabdash.devstack import Client, wait_for

pytestmark = pytest.mark.stack


def test_simulated_traffic_flows_into_the_experiment_state(embedded_stack):
    stack = embedded_stack
    stack.manage("seed_demo")
    stack.start_worker()
    web = stack.start_web()
    run = stack.manage(
        "simulate", "--url", web, "--requests", "200", "--rate", "0", "--drift-at", "100", "--batch", "25"
    )
    assert "drift: from now on census-boosting is broken" in run.stdout
    assert "done: 200 decisions, 200 rewards" in run.stdout
    client = Client(web, (stack.var / "demo-api-key").read_text().strip())
    state = client.wait_until_applied("census-income", 200)
    assert sum(arm["rewards"] for arm in state["arms"]) == 200
    served = wait_for(
        lambda: (s := client.state("census-income")) and sum(a["served"] for a in s["arms"]) == 200 and s,
        10,
        "decisions to be written",
    )
    assert {arm["model"]["name"] for arm in served["arms"]} == {"census-logreg", "census-tree", "census-boosting"}


def test_the_simulator_explains_a_missing_key(embedded_stack):
    result = embedded_stack.manage("simulate", "--requests", "1", check=False)
    assert result.returncode == 1
    assert "--key-file:" in result.stderr and "run `python manage.py seed_demo` first" in result.stderr
