"""Event ids the server makes for rewards sent without one: time-ordered, like UUIDv7.

The idempotency keys (``RewardKey``) are indexed by (experiment, event id). Random ids
(UUIDv4) land on random pages of that index, so on a large ledger each insert reads and
dirties a page that is not in memory, and after every checkpoint writes it whole to the
write-ahead log. Ids that begin with the time are inserted next to each other instead
(``python -m bench.event_ids`` measures both on the same table; figures in
docs/BENCHMARKS.md).

Layout: RFC 9562 §5.7 (UUID version 7) — 48 bits of Unix time in milliseconds, the
version, 74 random bits and the variant — as 32 hex digits. Python 3.14's ``uuid.uuid7``
makes the same; the Python client has its own copy (it depends on nothing of the server).
"""

from __future__ import annotations

import os
import time


def time_ordered_id() -> str:
    """A UUIDv7 as 32 lowercase hex digits; ids made later sort later (to the millisecond)."""
    milliseconds = time.time_ns() // 1_000_000
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF  # 12 bits
    rand_b = int.from_bytes(os.urandom(8), "big") & (1 << 62) - 1  # 62 bits
    return f"{milliseconds << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b:032x}"
