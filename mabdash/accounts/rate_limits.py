"""API rate limits: per API key (or dashboard user), and per IP address for everyone else.

Fixed one-minute windows counted in the shared cache by django-ratelimit (Redis in
production, so every web process counts together). The limit of a request is its view's
``rate_scope`` — ``serve`` (decide and rewards, set far above what the benchmarks send) or
``api`` — for an identified caller, and ``anonymous`` for a request without valid
credentials, counted per client IP. The check runs before authentication can fail, so a
client guessing keys is limited too.

Beyond the limit the answer is 429 with ``Retry-After`` (seconds to the next window). If
the cache is unreachable the limits are skipped (the API keeps serving) and not tried
again for ``BREAKER_SECONDS``, so an outage costs one failed round trip per process, not
one per request.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from mabdash.accounts.authentication import principal_for_key

if TYPE_CHECKING:
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0
_skip_until = 0.0


def _identity(request: Request) -> tuple[str, bool]:
    """A stable id of the caller, and whether it is identified (a valid key or a logged-in user)."""
    scheme, _, raw_key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() in ("api-key", "bearer") and raw_key.strip():
        try:
            principal = principal_for_key(raw_key.strip())
        except DatabaseError:
            principal = None
        if principal is not None:
            return f"key:{principal.key_id}", True
    user = getattr(request._request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}", True
    return f"ip:{request.META.get('REMOTE_ADDR', 'unknown')}", False


class ApiRateThrottle(BaseThrottle):
    """DRF throttle backed by django-ratelimit's counters (see the module docstring)."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        global _skip_until
        if time.monotonic() < _skip_until:
            return True
        caller, identified = _identity(request)
        scope = getattr(view, "rate_scope", "api") if identified else "anonymous"
        rate = settings.MABDASH["RATE_LIMITS"][scope]
        if not rate:
            return True
        try:
            usage = get_usage(
                request, group=f"mabdash-api-{scope}", key=lambda group, req: caller, rate=rate, increment=True
            )
        except Exception as error:  # cache unreachable: serve without limits for a while
            _skip_until = time.monotonic() + BREAKER_SECONDS
            logger.warning("rate limits skipped for %.0f s: cache unavailable (%s)", BREAKER_SECONDS, error)
            return True
        if usage is None or not usage["should_limit"]:
            return True
        self._wait = max(1, int(usage["time_left"]))
        return False

    def wait(self) -> float | None:
        return float(getattr(self, "_wait", 60))
