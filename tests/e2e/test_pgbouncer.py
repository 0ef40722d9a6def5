"""mabdash behind PgBouncer in transaction pooling (docs/OPERATIONS.md, "PgBouncer").

Every process of the stack reaches PostgreSQL through a private PgBouncer (Debian's) with
fewer server connections than clients, so consecutive transactions of one Django
connection land on different server connections. With ``MABDASH_DATABASE_POOLER=transaction``
the whole pipeline works: decide, rewards, learning, the rebuild, retention's snapshot
transaction and the counterfactual report's COPY.
"""

from __future__ import annotations

import shutil
import time

import pytest

from mabdash.devstack import Client, PgBouncer, PostgresDatabase, RedisServer, Stack, create_experiment
from tests.services import postgres_url

pytestmark = [
    pytest.mark.stack,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        shutil.which("pgbouncer") is None, reason="pgbouncer is not installed (apt-get install pgbouncer)"
    ),
]


@pytest.fixture
def bounced_stack(tmp_path, redis_server: RedisServer):
    database = PostgresDatabase(postgres_url())
    bouncer = PgBouncer(postgres_url(), pool_size=3)
    bouncer.start()
    stack = Stack(
        tmp_path,
        database_url=bouncer.url(database.name),
        broker_url=redis_server.url,
        redis_url=redis_server.url,
        env={"MABDASH_DATABASE_POOLER": "transaction", "MABDASH_LEARNING_BATCH": "500"},
    )
    stack.database = database
    stack.bouncer = bouncer
    try:
        stack.setup()
        yield stack
    finally:
        stack.stop()
        bouncer.stop()
        database.drop()


def test_the_whole_pipeline_runs_behind_pgbouncer_in_transaction_pooling(bounced_stack):
    stack = bounced_stack
    stack.start_worker()
    web = stack.start_web(workers=3)
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "pooled")
    client = Client(web, stack.api_key("server", "--experiment", "pooled"))
    decisions = [client.post("/api/v1/experiments/pooled/decide/").json() for _ in range(300)]
    rewards = [
        {"decision_id": d["decision_id"], "value": int(d["arm"] == 1 or n % 3 == 0), "event_id": f"r-{n}"}
        for n, d in enumerate(decisions)
    ]
    assert post_rewards(client, rewards, [])["accepted"] == 300
    # Thirty equal batches: each web process repeats the same INSERT often enough for psycopg
    # to prepare it (after 5), and the rebuild reads more than one 20,000-row chunk.
    more = [{"experiment": "pooled", "arm": n % 3, "value": n % 2, "event_id": f"m-{n}"} for n in range(29_700)]
    retried = []
    for start in range(0, len(more), 1_000):
        batch = more[start : start + 1_000]
        assert post_rewards(client, batch, retried)["accepted"] == len(batch), stack.bouncer.log()[-3000:]
    print(f"503/429 answers retried as a model server would: {retried}")
    state = client.wait_until_applied("pooled", 30_000, timeout=180)
    assert state["policy_version"] >= 60  # 500 per version: many transactions, many server connections

    rebuild = stack.manage("rebuild_policy_state", "pooled").stdout
    assert f"pooled: identical (version {state['policy_version']}, 30000 rewards, replayed from version 0)" in rebuild
    report = stack.manage("counterfactual", "pooled").stdout
    assert "would have earned" in report

    with stack.database.connect() as db:
        db.execute("UPDATE experiments_experiment SET retention_days = 1")
        db.execute("UPDATE experiments_reward SET received_at = now() - interval '2 days' WHERE event_id LIKE 'm-%'")
        db.execute("UPDATE experiments_decision SET created_at = now() - interval '2 days'")
    retention = stack.manage("retention", "pooled").stdout
    assert retention.startswith("pooled: archived 300 decisions and 29,700 rewards from before ")
    after = stack.manage("rebuild_policy_state", "pooled").stdout
    assert "pooled: identical" in after and "replayed from the checkpoint at version" in after
    assert f"login attempt: db={stack.database.name}" in stack.bouncer.log()  # it all went through PgBouncer


def post_rewards(client: Client, batch: list[dict], retried: list[str]) -> dict:
    """POST a batch as a model server does: a 503 or 429 (nothing stored) is retried after
    Retry-After; any other answer but 200 fails the test with its body."""
    for _ in range(5):
        response = client.post("/api/v1/rewards/", {"rewards": batch})
        if response.status_code not in (429, 503):
            break
        retried.append(f"{response.status_code} {response.text[:200]}")
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 200, response.text
    return response.json()
