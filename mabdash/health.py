"""Liveness and readiness, for orchestrators and load balancers.

- ``/livez``: the process answers (no database, no cache). A failing liveness check means
  "restart me"; it must not fail because a dependency is down.
- ``/readyz``: the process can serve decide: the database answers, or — while it does
  not — this process holds last-known allocations to serve from (``serving``:
  ``last_known``). A load balancer should route by readiness; pulling a node because the
  database is down would take away exactly the nodes that still serve.
- ``/healthz/``: the readiness answer, kept for existing probes.
"""

from __future__ import annotations

from django.db import DatabaseError, close_old_connections, connection
from django.http import HttpRequest, JsonResponse

from mabdash.experiments.serving import serving_cache


def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    cached = serving_cache.size()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        close_old_connections()
        body = {"database": "unavailable", "cached_experiments": cached}
        if cached:
            return JsonResponse({"status": "degraded", "serving": "last_known", **body})
        return JsonResponse({"status": "unavailable", "serving": "none", **body}, status=503)
    return JsonResponse({"status": "ok", "serving": "live", "database": "ok", "cached_experiments": cached})
