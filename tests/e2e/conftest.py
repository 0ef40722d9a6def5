"""Stacks for the end-to-end tests: embedded (SQLite + filesystem broker) and production
(PostgreSQL + Redis). Both run gunicorn, Celery workers and beat as real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mabdash.devstack import PostgresDatabase, RedisServer, Stack, create_experiment
from tests.services import postgres_url


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


__all__ = ["create_experiment"]
