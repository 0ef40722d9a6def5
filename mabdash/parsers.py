"""A JSON parser that refuses oversize bodies with 413 before reading them whole."""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


def too_large_message() -> str:
    return f"Request body is larger than the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


class LimitedJSONParser(JSONParser):
    """DRF's strict JSON parser (NaN and Infinity are errors) with a body size limit.

    DRF reads the request stream directly, bypassing Django's own size check, so the
    limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``) is enforced here, also for bodies sent
    without a Content-Length.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(too_large_message())
        if stream is None:
            return super().parse(stream, media_type, parser_context)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(too_large_message())

        return super().parse(BytesIO(body), media_type, parser_context)
