"""One model server process for tests/e2e/test_client.py: local decisions and rewards at a
steady rate, then a JSON line with what it sent and what the client says became of it.

    python tests/e2e/client_process.py URL KEY SLUG DECISIONS RATE SEED
"""

from __future__ import annotations

import json
import random
import sys
import time

from mabdash_client import Client

MEANS = [0.3, 0.5, 0.7]


def main() -> None:
    url, key, slug = sys.argv[1:4]
    decisions, rate, seed = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    rng = random.Random(seed)
    counts, sums = [0, 0, 0], [0.0, 0.0, 0.0]
    # Draws for 20 s of traffic, each usable for a minute: a 10 s outage is served from them.
    options = {"mode": "local", "block_size": 8_000, "pool_seconds": 20.0, "draw_max_age": 60.0, "retry_cap": 1.0}
    with Client(url, key, **options) as client:
        started = time.monotonic()
        for i in range(decisions):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            decision = client.decide(slug)
            value = float(rng.random() < MEANS[decision.arm])
            client.reward(decision, value=value, event_id=f"p{seed}-{i}")
            counts[decision.arm] += 1
            sums[decision.arm] += value
        report = client.flush(timeout=120)
        stats = client.stats
    print(json.dumps({"counts": counts, "sums": sums, "complete": report.complete, "stats": stats}))


if __name__ == "__main__":
    main()
