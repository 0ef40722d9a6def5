"""The real deployment the service-level benchmarks run against, set up and torn down once.

gunicorn (3 sync workers), a Celery worker and beat, a scratch PostgreSQL database on the
server of DATABASE_URL and a private Redis; an experiment ``bench`` of three arms with an
admin key and a client key scoped to it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mabdash.devstack import Client, PostgresDatabase, RedisServer, Stack, create_experiment


@dataclass(frozen=True)
class Deployment:
    stack: Stack
    url: str
    client_key: str
    database_url: str
    redis_url: str


@contextmanager
def deployment(name: str, env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """Run the stack for the benchmark ``name``; everything is stopped and dropped afterwards."""
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"bench.{name}: set DATABASE_URL=postgres://… (a scratch database is created there)")
    workdir = Path(tempfile.mkdtemp(prefix=f"mabdash-bench-{name}-"))
    redis = RedisServer(workdir)
    redis.start()
    database = PostgresDatabase(server_url)
    stack = Stack(
        workdir,
        database_url=database.url,
        broker_url=redis.url,
        redis_url=redis.url,
        env={"MABDASH_LOG_LEVEL": "WARNING", **(env or {})},
    )
    try:
        stack.setup()
        stack.start_worker()
        stack.start_beat()
        url = stack.start_web(workers=3)
        admin = stack.api_key("bench-admin", "--role", "admin", "--all-experiments")
        create_experiment(Client(url, admin), "bench")
        key = stack.api_key("bench-client", "--experiment", "bench")
        yield Deployment(stack, url, key, database.url, redis.url)
    finally:
        stack.stop()
        database.drop()
        redis.stop()
