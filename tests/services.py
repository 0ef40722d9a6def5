"""Which backing services this test run has (no Django imports)."""

from __future__ import annotations

import os
import shutil
from functools import cache


def postgres_url() -> str | None:
    """The PostgreSQL server of this run (DATABASE_URL), or None."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@cache
def _reachable_postgres(url: str) -> bool:
    try:
        import psycopg

        # The server, not the named database: tests create their own databases on it.
        with psycopg.connect(url.rpartition("/")[0] + "/postgres", connect_timeout=2):
            return True
    except Exception:
        return False


@cache
def _reachable_redis(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


CHROMIUM = os.environ.get("MABDASH_CHROMIUM", "/usr/bin/chromium")


def missing_service(marker: str) -> str | None:
    """A one-line reason the service behind ``marker`` is missing, or None."""
    if marker == "postgres":
        url = postgres_url()
        if url is None:
            return "needs PostgreSQL: set DATABASE_URL=postgres://…"
        if not _reachable_postgres(url):
            return f"needs PostgreSQL: {url} does not answer"
    if marker == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            return "needs Redis: set REDIS_URL=redis://…"
        if not _reachable_redis(url):
            return f"needs Redis: {url} does not answer"
        if not shutil.which("redis-server"):
            return "needs the redis-server binary to start a private instance"
    if marker == "pgserver":
        from mabdash.devstack import postgres_binaries

        if postgres_binaries() is None:
            return "needs PostgreSQL's server binaries (initdb, pg_ctl) to start a private instance"
    if marker == "browser":
        if not os.path.exists(CHROMIUM):
            return f"needs Chromium at {CHROMIUM} (apt-get install chromium, or set MABDASH_CHROMIUM)"
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return "needs the playwright package (requirements-dev.txt)"
    return None
