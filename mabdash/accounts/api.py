"""The base of every API view."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.views import APIView


class RateLimitedApiView(APIView):
    """Base of every API view: rate limits are checked first, before authentication can fail
    or permissions refuse (DRF checks them last), so unauthenticated clients are limited too."""

    rate_scope = "api"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        APIView.check_throttles(self, request)
        request._mabdash_throttled = True  # type: ignore[attr-defined]
        super().initial(request, *args, **kwargs)

    def check_throttles(self, request: Request) -> None:
        if not getattr(request, "_mabdash_throttled", False):
            super().check_throttles(request)
