"""Stacks for the end-to-end tests: embedded (SQLite + filesystem broker) and production
(PostgreSQL + Redis). Both run gunicorn, Celery workers and beat as real processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import postgres_url
from tests.stack import Client, PostgresDatabase, RedisServer, Stack


@pytest.fixture
def embedded_stack(tmp_path) -> Iterator[Stack]:
    stack = Stack(tmp_path, database_url=f"sqlite:///{tmp_path / 'mabdash.sqlite3'}", broker_url=None)
    stack.setup()
    yield stack
    stack.stop()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def production_stack(tmp_path, redis_server) -> Iterator[Stack]:
    database = PostgresDatabase(postgres_url())
    stack = Stack(tmp_path, database_url=database.url, broker_url=redis_server.url, redis_url=redis_server.url)
    stack.database = database
    stack.setup()
    yield stack
    stack.stop()
    database.drop()


def create_experiment(
    admin: Client, slug: str, policy: dict[str, Any] | None = None, arms: int = 3, **fields: Any
) -> dict[str, Any]:
    """Register ``arms`` model versions and a running experiment over them, via the API."""
    ids = []
    for i in range(arms):
        response = admin.post(
            "/api/v1/models/", {"name": f"{slug}-model", "version": str(i), "artifact_uri": f"s3://{slug}/{i}"}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    body = {
        "slug": slug,
        "name": slug,
        "policy": policy or {"kind": "thompson"},
        "arms": ids,
        "status": "running",
        **fields,
    }
    response = admin.post("/api/v1/experiments/", body)
    assert response.status_code == 201, response.text
    return response.json()
