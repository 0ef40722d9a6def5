"""The Python client (clients/python) against the real stack: gunicorn, a Celery worker,
PostgreSQL and Redis. What the client was told is accepted is learned exactly once, also
when the web server goes away while rewards are queued."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mabdash_client import Client as MabdashClient

from mabdash.devstack import Client, create_experiment, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis]
MEANS = [0.3, 0.5, 0.7]


def learning_experiment(stack, slug: str) -> tuple[str, Client, str]:
    """Web, worker and beat running; an experiment; an admin client and a model server's key."""
    stack.start_worker()
    stack.start_beat()
    web = stack.start_web(workers=2)
    admin = Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments"))
    create_experiment(admin, slug)
    return web, admin, stack.api_key("server", "--experiment", slug)


def test_rewards_from_the_client_are_learned_exactly_across_a_web_outage(production_stack):
    stack = production_stack
    web, admin, key = learning_experiment(stack, "client")
    sent: list[tuple[int, float]] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def count(outcome) -> None:
        with lock:
            outcomes[outcome.outcome] += 1

    with MabdashClient(web, key, max_batch_age=0.05, retry_cap=0.5, on_outcome=count) as client:

        def serve(seed: int, n: int) -> None:  # a model server thread: decide, predict, reward
            rng = random.Random(seed)
            for _ in range(n):
                decision = client.decide("client")
                value = float(rng.random() < MEANS[decision.arm])
                client.reward(decision, value=value)
                with lock:
                    sent.append((decision.arm, value))

        threads = [threading.Thread(target=serve, args=(seed, 400)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.flush(timeout=60).complete

        # The web server goes away with rewards still to send; the client keeps them and retries.
        held = [client.decide("client") for _ in range(200)]
        stack.kill("web", signal.SIGTERM)  # a restart: gunicorn writes its buffered decisions first
        for decision in held:
            client.reward(decision, value=1.0)
            sent.append((decision.arm, 1.0))
        wait_for(lambda: client.stats["retries"] >= 2, 30, "the client to retry against the stopped server")
        assert client.stats["accepted"] == 1_600
        stack.start_web(workers=2, port=urlsplit(web).port)
        report = client.flush(timeout=60)
        stats = client.stats

    assert report.complete, report
    assert outcomes == {"accepted": 1_800}
    assert (stats["queued"], stats["accepted"], stats["undelivered"]) == (1_800, 1_800, 0)
    state = admin.wait_until_applied("client", 1_800)
    assert [arm["rewards"] for arm in state["arms"]] == [sum(a == k for a, _ in sent) for k in range(3)]
    assert [arm["reward_sum"] for arm in state["arms"]] == [sum(v for a, v in sent if a == k) for k in range(3)]
    served = wait_for(
        lambda: (s := admin.state("client")) and sum(a["served"] for a in s["arms"]) == 1_800 and s,
        20,
        "every decision in the ledger",
    )
    assert [arm["served"] for arm in served["arms"]] == [sum(a == k for a, _ in sent) for k in range(3)]


def test_a_decision_id_of_another_experiment_is_refused_per_item(production_stack):
    stack = production_stack
    web = stack.start_web()
    admin = Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments"))
    create_experiment(admin, "mine")
    create_experiment(admin, "theirs")
    theirs = admin.post("/api/v1/experiments/theirs/decide/").json()["decision_id"]
    outcomes = []
    with MabdashClient(web, stack.api_key("server", "--experiment", "mine"), on_outcome=outcomes.append) as client:
        client.reward(theirs, value=1.0, event_id="foreign")
        client.reward("AQAA-forged.signature", value=1.0, event_id="forged")
        client.flush(timeout=30)
    assert {o.event_id: o.outcome for o in outcomes} == {"foreign": "rejected", "forged": "rejected"}
    assert all("decision_id" in o.errors for o in outcomes), [o.errors for o in outcomes]


def test_local_decisions_are_ledgered_learned_and_follow_a_pin_within_a_second(production_stack):
    stack = production_stack
    web, admin, key = learning_experiment(stack, "local")
    rng = random.Random(11)
    sent: list[tuple[int, float]] = []
    # The first block covers the loop, however fast it runs: the share decided locally does not
    # depend on how quickly refills come back on a loaded machine.
    with MabdashClient(web, key, mode="local", block_size=3_500, refresh_interval=0.25) as client:
        for _ in range(3_000):
            decision = client.decide("local")
            value = float(rng.random() < MEANS[decision.arm])
            client.reward(decision, value=value)
            sent.append((decision.arm, value))
        assert client.flush(timeout=60).complete
        local = client.stats["decided_local"]
        assert local + client.stats["decided_remote_fallback"] == 3_000
        assert local >= 2_500, client.stats  # the in-process path is the normal one

        pinned = admin.post("/api/v1/experiments/local/actions/", {"action": "pin", "arm": 2, "reason": "canary"})
        assert pinned.status_code == 200, pinned.json()
        started = time.monotonic()
        while client.decide("local").served_by != "pin":
            assert time.monotonic() - started < 1.5, "the pin did not reach the client within 1.5 s"
        assert {client.decide("local").arm for _ in range(200)} == {2}
        client.flush(timeout=30)
        stats = client.stats

    assert stats["decisions_unrecorded"] == 0
    state = admin.wait_until_applied("local", 3_000)
    assert [arm["rewards"] for arm in state["arms"]] == [sum(a == k for a, _ in sent) for k in range(3)]
    assert [arm["reward_sum"] for arm in state["arms"]] == [sum(v for a, v in sent if a == k) for k in range(3)]
    decided = stats["decided_local"] + stats["decided_remote_fallback"]  # every decide call of the test
    served = wait_for(
        lambda: (s := admin.state("local")) and sum(a["served"] for a in s["arms"]) == decided and s,
        20,
        "every served decision in the ledger",
    )
    assert sum(a["served"] for a in served["arms"]) == decided


def test_four_model_servers_lose_nothing_and_count_nothing_twice_across_a_10_s_outage(production_stack):
    stack = production_stack
    web, admin, key = learning_experiment(stack, "fleet")
    script = Path(__file__).with_name("client_process.py")
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), web, key, "fleet", "25000", "400", str(seed)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    time.sleep(20)
    stack.kill("web", signal.SIGTERM)  # the server goes away for 10 s while the fleet keeps serving
    time.sleep(10)
    stack.start_web(workers=2, port=urlsplit(web).port)
    results = [json.loads(process.communicate(timeout=300)[0].strip().splitlines()[-1]) for process in processes]

    for result in results:
        stats = result["stats"]
        assert result["complete"], stats
        # "duplicate": a retry of a batch the server had stored (its answer was lost): delivered once.
        assert stats["accepted"] + stats["duplicate"] == 25_000, stats
        assert (stats["undelivered"], stats["conflict"], stats["rejected"]) == (0, 0, 0), stats
        assert stats["decided_offline"] == stats["decided_offline_default"] == 0, stats
        assert stats["decisions_unrecorded"] == 0, stats
    counts = [sum(r["counts"][k] for r in results) for k in range(3)]
    sums = [sum(r["sums"][k] for r in results) for k in range(3)]
    assert sum(counts) == 100_000
    state = admin.wait_until_applied("fleet", 100_000, timeout=180)
    assert [arm["rewards"] for arm in state["arms"]] == counts
    assert [arm["reward_sum"] for arm in state["arms"]] == sums
    served = wait_for(
        lambda: (s := admin.state("fleet")) and sum(a["served"] for a in s["arms"]) == 100_000 and s,
        60,
        "every decision in the ledger",
    )
    assert [arm["served"] for arm in served["arms"]] == counts
