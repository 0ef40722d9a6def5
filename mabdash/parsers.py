"""A JSON parser that refuses oversize bodies with 413 before reading them whole."""

from __future__ import annotations

import re
from io import BytesIO

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


SUSPICIOUS_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


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

        data = super().parse(BytesIO(body), media_type, parser_context)
        # A NUL or a lone surrogate can only arrive as a \u escape (raw ones are not valid
        # JSON), so bodies without such an escape skip the walk over every string.
        if SUSPICIOUS_ESCAPE.search(body):
            _check_strings(data)
        return data


def _storable(text: str) -> bool:
    """No NUL (PostgreSQL text cannot hold it) and no unpaired surrogate (not valid UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_strings(value) -> None:
    """Refuse, as malformed, JSON whose strings no database column could store."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _storable(item):
                raise ParseError("strings must not contain NUL characters or unpaired surrogates")
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append(key)
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
