"""The scored-stream cache: a hit is exactly what training gives; any changed input misses."""

from __future__ import annotations

import numpy as np

from replay import cache
from replay.runner import Settings, scored_stream

TINY = {"strategies": (), "routings": (), "rollbacks": (), "chunks": 10, "fraud_rows": 10_000}


def test_a_cached_stream_is_the_trained_one_and_is_reused(tmp_path):
    fresh = scored_stream("fraud", "break", 1, Settings(**TINY))
    first = scored_stream("fraud", "break", 1, Settings(**TINY, cache=tmp_path))
    (stored,) = tmp_path.glob("*.npz")
    stored_at = stored.stat().st_mtime_ns
    again = scored_stream("fraud", "break", 1, Settings(**TINY, cache=tmp_path))
    assert stored.stat().st_mtime_ns == stored_at  # a hit: nothing retrained or rewritten
    for scored in (first, again):
        assert np.array_equal(scored.predictions, fresh.predictions)
        assert np.array_equal(scored.rewards, fresh.rewards) and np.array_equal(scored.validation, fresh.validation)
        assert scored.broken == fresh.broken and scored.stream.chunks == fresh.stream.chunks
        assert scored.stream.drift_chunk == fresh.stream.drift_chunk and scored.stream.kind == "fraud"


def test_every_input_that_changes_a_stream_changes_the_key(tmp_path):
    base = {"dataset": "census", "drift": True, "seed": 5, "chunks": 100}
    keys = {
        cache.key(base, []),
        cache.key(base | {"seed": 6}, []),
        cache.key(base | {"chunks": 50}, []),
        cache.key(base | {"drift": False}, []),
    }
    data = tmp_path / "creditcard.csv"
    data.write_text("a")
    keys.add(cache.key(base, [data]))
    data.write_text("b")
    keys.add(cache.key(base, [data]))
    assert len(keys) == 6 and cache.key(base, []) == cache.key(dict(base), [])


def test_a_damaged_file_is_a_miss_and_is_rebuilt(tmp_path):
    scored_stream("fraud", "drift", 2, Settings(**TINY, cache=tmp_path))
    (stored,) = tmp_path.glob("*.npz")
    stored.write_bytes(b"not an npz")
    assert cache.load(tmp_path, stored.stem) is None
    rebuilt = scored_stream("fraud", "drift", 2, Settings(**TINY, cache=tmp_path))
    assert cache.load(tmp_path, stored.stem) is not None and rebuilt.stream.drift_chunk is not None
