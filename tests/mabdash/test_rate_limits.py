"""Rate limits: per API key for identified callers, per IP for the rest; 429 + Retry-After in
the API's error shape; a cache outage lifts the limits instead of failing requests."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from mabdash.accounts import rate_limits

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tight_limits(settings):
    settings.MABDASH = {**settings.MABDASH, "RATE_LIMITS": {"serve": "3/m", "api": "2/m", "anonymous": "2/m"}}
    cache.clear()
    rate_limits._skip_until = 0.0
    yield
    cache.clear()


def test_a_key_is_limited_per_scope_with_429_and_retry_after(api, client_key, experiment):
    client = api(client_key)
    codes = [client.post("/api/v1/experiments/churn/decide/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.post("/api/v1/experiments/churn/decide/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    wait = int(refused["Retry-After"])
    assert refused.json() == {
        "detail": f"Request was throttled. Expected available in {wait} second{'' if wait == 1 else 's'}.",
        "errors": {},
    }
    # The rest of the API has its own budget for the same key.
    assert [client.get("/api/v1/experiments/churn/").status_code for _ in range(3)] == [200, 200, 429]


def test_keys_are_counted_apart(api, client_key, admin_key, experiment):
    for _ in range(3):
        api(client_key).post("/api/v1/experiments/churn/decide/")
    assert api(client_key).post("/api/v1/experiments/churn/decide/").status_code == 429
    assert api(admin_key).post("/api/v1/experiments/churn/decide/").status_code == 200


def test_requests_without_valid_credentials_are_limited_per_ip(api, experiment):
    anonymous = [api().get("/api/v1/experiments/").status_code for _ in range(3)]
    guessing = api("mab_guess_wrong").get("/api/v1/experiments/")
    assert anonymous == [401, 401, 429]
    assert guessing.status_code == 429  # a bad key counts as the same IP, not as a fresh caller


def test_a_cache_outage_lifts_the_limits(api, client_key, experiment, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(rate_limits, "get_usage", unreachable)
    client = api(client_key)
    assert [client.post("/api/v1/experiments/churn/decide/").status_code for _ in range(5)] == [200] * 5
    assert rate_limits._skip_until > 0  # tried once, then left alone for BREAKER_SECONDS
