"""Event ids for rewards: time-ordered (UUIDv7, RFC 9562 §5.7), as 32 hex digits.

The server's idempotency index is (experiment, event id): ids that begin with the time are
stored next to each other, where random ids (UUIDv4) cost a read and a full-page write per
reward on a large ledger (docs/CLIENT.md). The server makes the same for rewards sent
without an id (``mabdash.experiments.event_ids``); this package depends on nothing of it.
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
