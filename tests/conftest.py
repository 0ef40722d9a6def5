"""Root test configuration (imports nothing from Django: tests/policies run without it).

Service-backed tests carry a marker: ``postgres`` (a PostgreSQL server, from
DATABASE_URL) or ``redis`` (a Redis server from REDIS_URL and the redis-server binary, to
start private instances), ``pgserver`` (PostgreSQL's initdb and pg_ctl, to start a
private cluster a test can stop) or ``browser`` (Debian's Chromium and Playwright). Without the service they are skipped with a one-line reason;
with ``MABDASH_REQUIRE_SERVICES=1`` (CI) a missing service fails them instead.
"""

from __future__ import annotations

import os

import pytest

from tests.services import missing_service

REQUIRE_SERVICES = os.environ.get("MABDASH_REQUIRE_SERVICES") == "1"


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("postgres", "redis", "browser", "pgserver"):
        if item.get_closest_marker(marker):
            reason = missing_service(marker)
            if reason:
                if REQUIRE_SERVICES:
                    pytest.fail(f"MABDASH_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
                pytest.skip(reason)
