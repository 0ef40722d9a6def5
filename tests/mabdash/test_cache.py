"""The Redis cache keeps one client per pool and behaves as Django's."""

from __future__ import annotations

import os

import pytest

from mabdash.cache import RedisCache

pytestmark = pytest.mark.redis


def test_one_client_per_pool_and_the_cache_api_unchanged():
    cache = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "test-cache"})
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client() is cache._cache.get_client()
    cache.delete("hits")
    assert cache.add("hits", 1, timeout=30) is True
    assert cache.add("hits", 5, timeout=30) is False
    assert cache.incr("hits") == 2
    cache.set("value", {"a": [1, 2]}, timeout=30)
    assert (cache.get("hits"), cache.get("value"), cache.get("missing", "default")) == (2, {"a": [1, 2]}, "default")
    cache.delete_many(["hits", "value"])
    assert cache.get("hits") is None
