"""Fixtures for the Django side: users, API keys, models, experiments, API clients.

Markers for service-backed tests are handled in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from mabdash.accounts.authentication import forget_cached_keys
from mabdash.accounts.services import api_key_create, user_create
from mabdash.experiments.models import Experiment, ModelVersion
from mabdash.experiments.services.decision_log import decision_buffer
from mabdash.experiments.services.experiments import experiment_create
from mabdash.experiments.services.registry import model_version_register
from mabdash.experiments.serving import serving_cache
from mabdash.queue import background


@pytest.fixture(autouse=True, scope="session")
def _no_flusher_thread() -> None:
    # In the test process decisions are flushed explicitly; real processes run the thread.
    settings.MABDASH["DECISION_FLUSH_SECONDS"] = 0
    # Check the serving version on every request: in-process tests expect what they just wrote.
    settings.MABDASH["SERVING_REFRESH_SECONDS"] = 0
    # Password hashing is deliberately slow; tests only need it to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> None:
    serving_cache.clear()
    forget_cached_keys()
    decision_buffer._reset()
    yield
    serving_cache.clear()
    forget_cached_keys()
    decision_buffer._reset()  # nothing left for the exit-time flush once the test database is gone
    background.drain()


@pytest.fixture
def operator(db):
    return user_create(username="olivia", password="pw-olivia-1234", role="operator")


@pytest.fixture
def viewer(db):
    return user_create(username="victor", password="pw-victor-1234", role="viewer")


@pytest.fixture
def model_versions(db) -> list[ModelVersion]:
    return [
        model_version_register(
            name="churn", version=str(i), artifact_uri=f"s3://models/churn/{i}", validation_score=score, actor="t"
        )
        for i, score in enumerate([0.81, 0.86, 0.79], start=1)
    ]


@pytest.fixture
def make_experiment(model_versions) -> Callable[..., Experiment]:
    def make(slug: str = "churn", **overrides: Any) -> Experiment:
        options: dict[str, Any] = {
            "name": "Churn scoring",
            "policy_kind": "thompson",
            "model_version_ids": [m.pk for m in model_versions],
            "status": "running",
            "actor": "tester",
        }
        options.update(overrides)
        return experiment_create(slug=slug, **options)

    return make


@pytest.fixture
def experiment(make_experiment) -> Experiment:
    return make_experiment()


@pytest.fixture
def client_key(experiment) -> str:
    return api_key_create(name="model-server", experiments=[experiment]).raw_key


@pytest.fixture
def admin_key(db) -> str:
    return api_key_create(name="automation", role="admin", all_experiments=True).raw_key


@pytest.fixture
def api() -> Callable[[str | None], APIClient]:
    """An API client, authenticated with ``key`` when given."""

    def client(key: str | None = None) -> APIClient:
        api_client = APIClient()
        if key:
            api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        return api_client

    return client
