"""Answer 503 with Retry-After, never 500, when the database is unreachable."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, close_old_connections
from django.http import HttpRequest, HttpResponse

from mabdash.api_errors import RETRY_AFTER_SECONDS


class DatabaseUnavailableMiddleware:
    """For pages and other non-API views (DRF's exception handler covers the API)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            return self._unavailable(request)
        return None

    @staticmethod
    def _unavailable(request: HttpRequest) -> HttpResponse:
        close_old_connections()
        body = {"detail": "The database is unavailable; nothing was stored. Retry later.", "errors": {}}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json")
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
