"""A throw-away database for benchmarks: a new database on the PostgreSQL server named
by DATABASE_URL, or a temporary SQLite file. Call ``setup()`` before importing models."""

from __future__ import annotations

import atexit
import os
import tempfile
import uuid
from typing import Any


def setup() -> str:
    """Point Django at a fresh, migrated database; return a description of it."""
    server = os.environ.get("DATABASE_URL", "")
    if server.startswith(("postgres://", "postgresql://")):
        import psycopg

        base = server.rpartition("/")[0]
        name = f"mabdash_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        atexit.register(drop)
        os.environ["DATABASE_URL"] = f"{base}/{name}"
        description = "PostgreSQL"
    else:
        directory = tempfile.mkdtemp(prefix="mabdash-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench.sqlite3"
        os.environ.setdefault("MABDASH_VAR_DIR", directory)
        description = "SQLite"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mabdash.settings")
    os.environ.setdefault("MABDASH_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return description


def running_experiment(slug: str, arms: int) -> Any:
    """A running Thompson experiment of ``arms`` freshly registered model versions (after setup())."""
    from mabdash.experiments.services.experiments import experiment_create
    from mabdash.experiments.services.registry import model_version_register

    models = [
        model_version_register(name=slug, version=str(i), artifact_uri=f"s3://{slug}/{i}", actor="bench")
        for i in range(arms)
    ]
    return experiment_create(
        slug=slug,
        name=slug,
        policy_kind="thompson",
        model_version_ids=[m.pk for m in models],
        status="running",
        actor="bench",
    )
