"""Retention in production: a worker killed mid-run loses nothing, while rewards keep arriving.

Production stack (PostgreSQL + a private Redis, real Celery workers). Old rows are bulk
loaded with SQL so that the export takes long enough to kill the worker inside it.
"""

from __future__ import annotations

import csv
import gzip
import threading
import time

import pytest

from mabdash.devstack import Client, create_experiment, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis]

BULK = 300_000  # old late rewards: enough that archiving them takes a while


def archived_event_ids(run_directory) -> list[str]:
    with gzip.open(run_directory / "rewards.csv.gz", "rt", newline="") as text:
        return [row["event_id"] for row in csv.DictReader(text)]


def test_retention_killed_mid_run_then_rerun_archives_each_reward_once_and_loses_none(production_stack):
    stack = production_stack
    web = stack.start_web()
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "soak")
    client = Client(web, stack.api_key("server", "--experiment", "soak"))
    early = [{"experiment": "soak", "arm": i % 3, "value": i % 2, "event_id": f"early-{i}"} for i in range(3000)]
    assert client.post("/api/v1/rewards/", {"rewards": early}).json()["accepted"] == 3000
    stack.start_worker("learner")
    client.wait_until_applied("soak", 3000)
    stack.kill("learner")

    with stack.database.connect() as db:
        experiment_id = db.execute("SELECT id FROM experiments_experiment WHERE slug = 'soak'").fetchone()[0]
        arm_id = db.execute("SELECT min(id) FROM experiments_arm WHERE experiment_id = %s", [experiment_id]).fetchone()
        # Rows as ingestion stores them: each reward with its idempotency key.
        db.execute(
            "WITH r AS (INSERT INTO experiments_reward (event_id, experiment_id, arm_id, value, trials, received_at, "
            "learn) SELECT 'bulk-' || n, %s, %s, n %% 2, 1, now() - interval '10 days', false "
            "FROM generate_series(1, %s) AS n RETURNING experiment_id, event_id, received_at) "
            "INSERT INTO experiments_rewardkey (experiment_id, event_id, received_at) SELECT * FROM r",
            [experiment_id, arm_id[0], BULK],
        )
        db.execute(
            "WITH r AS (UPDATE experiments_reward SET received_at = now() - interval '9 days' "
            "WHERE event_id LIKE 'early-%' RETURNING experiment_id, event_id, received_at) "
            "UPDATE experiments_rewardkey k SET received_at = r.received_at FROM r "
            "WHERE k.experiment_id = r.experiment_id AND k.event_id = r.event_id"
        )
        db.execute("UPDATE experiments_experiment SET retention_days = 1 WHERE id = %s", [experiment_id])
        db.commit()

    # Rewards keep arriving through the whole test.
    posted: list[str] = []
    stop = threading.Event()

    def keep_posting() -> None:
        batch = 0
        while not stop.is_set():
            items = [
                {"experiment": "soak", "arm": i % 3, "value": 1, "event_id": f"live-{batch}-{i}"} for i in range(50)
            ]
            answer = client.post("/api/v1/rewards/", {"rewards": items}).json()
            assert answer["accepted"] == 50, answer
            posted.extend(item["event_id"] for item in items)
            batch += 1
            time.sleep(0.02)

    poster = threading.Thread(target=keep_posting)
    poster.start()
    try:
        stack.start_worker("doomed")
        stack.shell("from mabdash.experiments.tasks import retention_sweep_task as t; t.delay()")
        archive = stack.var / "archive" / "soak"
        wait_for(lambda: list(archive.glob("*/rewards.csv.gz.part")), 120, "retention to be archiving", interval=0.005)
        stack.kill("doomed")  # kill -9 in the middle of writing the rewards archive
        with stack.database.connect() as db:
            assert db.execute("SELECT count(*) FROM experiments_retentionrun").fetchone()[0] == 0
            assert (
                db.execute(
                    "SELECT count(*) FROM experiments_reward WHERE event_id LIKE 'bulk-%' OR event_id LIKE 'early-%'"
                ).fetchone()[0]
                == BULK + 3000
            )  # the run rolled back: every row is still stored
        (interrupted,) = archive.iterdir()

        stack.start_worker("survivor")
        # A learning run the doomed worker held (its follow-up message, or the run it was in)
        # died with it: the coalescing mark stops new requests until it expires, and the
        # broker gives the message back only after its visibility timeout. Beat's sweep is
        # what publishes learning for rewards left waiting — as in every deployment.
        stack.start_beat()
        stack.shell("from mabdash.experiments.tasks import retention_sweep_task as t; t.delay()")

        def committed() -> bool:
            with stack.database.connect() as db:
                return db.execute("SELECT count(*) FROM experiments_retentionrun").fetchone()[0] == 1

        wait_for(committed, 180, "the second retention run to commit", interval=0.2)
        time.sleep(1)  # a little more traffic after the run
    finally:
        stop.set()
        poster.join()

    (run_directory,) = archive.iterdir()
    assert run_directory != interrupted  # the interrupted run's files were discarded
    archived = archived_event_ids(run_directory)
    with stack.database.connect() as db:
        stored = [row[0] for row in db.execute("SELECT event_id FROM experiments_reward")]
        keys = [row[0] for row in db.execute("SELECT event_id FROM experiments_rewardkey")]
        run = db.execute("SELECT rewards, checkpoint_version FROM experiments_retentionrun").fetchone()
    assert len(archived) == run[0] == BULK + 3000
    assert len(set(archived)) == len(archived)
    assert set(archived).isdisjoint(stored)
    assert sorted(keys) == sorted(stored)  # the archived rewards' keys went with them, no other
    expected = {f"bulk-{n}" for n in range(1, BULK + 1)} | {item["event_id"] for item in early} | set(posted)
    assert set(archived) | set(stored) == expected  # nothing lost, nothing archived that was not stored
    assert len(posted) > 50

    state = client.wait_until_applied("soak", 3000 + len(posted), timeout=120)
    rebuild = stack.manage("rebuild_policy_state", "soak")
    assert (
        f"soak: identical (version {state['policy_version']}, {3000 + len(posted)} rewards, "
        f"replayed from the checkpoint at version {run[1]})" in rebuild.stdout
    )
