"""One JSON error shape for the whole API: ``{"detail": ..., "errors": {field: [reasons]}}``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mabdash.errors import ServiceError
from mabdash.parsers import PayloadTooLarge, too_large_message

RETRY_AFTER_SECONDS = "5"


def _flatten(detail: Any, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field.sub": ["reason"]}``."""
    if isinstance(detail, (dict, list)) and not (isinstance(detail, list) and all(isinstance(v, str) for v in detail)):
        items = detail.items() if isinstance(detail, dict) else enumerate(detail)
        errors: dict[str, list[str]] = {}
        for key, value in items:
            child = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            for field, messages in _flatten(value, child).items():
                errors.setdefault(field, []).extend(messages)
        return errors
    messages = detail if isinstance(detail, list) else [detail]
    return {path or "body": [str(m) for m in messages]} if messages else {}


def unavailable_response() -> Response:
    response = Response(
        {"detail": "The database is unavailable; nothing was stored. Retry later.", "errors": {}},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map service errors, DRF errors and database outages to the API's error shape."""
    if isinstance(exc, ServiceError):
        response = Response({"detail": exc.message, "errors": exc.errors}, status=exc.status_code)
        if exc.status_code == 503:
            response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(too_large_message())
    if isinstance(exc, DataError):
        # A value the database cannot store (out of range, …): the client's input, not our fault.
        return Response(
            {"detail": "A value in the request is out of range.", "errors": {"body": [str(exc)[:200]]}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError:
        return unavailable_response()
    handled = drf_exception_handler(exc, context)
    if handled is None:
        return None
    response = handled
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "Invalid input.", "errors": _flatten(exc.detail)}
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"detail": f"Malformed request body: {exc.detail}", "errors": {"body": [str(exc.detail)]}}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"detail": str(detail), "errors": {}}
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON 404 for API paths that match no route (pages keep Django's HTML 404)."""
    if request.path.startswith("/api/"):
        shown = request.path if len(request.path) <= 200 else request.path[:200] + "…"
        return JsonResponse({"detail": f"No API endpoint at {shown}.", "errors": {}}, status=404)
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """A failure of ours: JSON for the API (the body says nothing about the cause), HTML for pages."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Internal error; it has been logged. Retry, or report it if it persists.", "errors": {}},
            status=500,
        )
    return django_server_error(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's own 400s (a bad Host header, a suspicious operation) in the API's shape."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request.", "errors": {}}, status=400)
    return django_bad_request(request, exception or SuspiciousOperation("bad request"))
