"""The API's JSON parser: bounded size, bounded nesting, never an exception for any body.

Bodies are parsed with orjson (strict JSON, nesting at most 1,024 deep, valid UTF-8 only).
What orjson refuses but a per-field answer can explain — a number no double can hold,
``NaN``/``Infinity``, a lone surrogate escape — is parsed again with the standard library,
numbers that do not fit kept as :class:`mabdash.inputs.Unrepresentable` markers, so that
the field (and, in a batch, only its item) is refused with a reason. A body that is not
JSON at all, or nested too deep, is a 400 naming the body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import IO, Any

import orjson
from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from mabdash.inputs import Unrepresentable

# Python refuses to convert longer digit strings to int (CVE-2020-10735): not a number we keep.
_MAX_INT_DIGITS = 4300


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


def too_large_message() -> str:
    return f"Request body is larger than the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def _float(text: str) -> float | Unrepresentable:
    value = float(text)
    return value if math.isfinite(value) else Unrepresentable(text)


def _int(text: str) -> int | Unrepresentable:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else Unrepresentable(text)


def parse_json(body: bytes) -> Any:
    """Parse a request body; raise ``ParseError`` (400) for anything that is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error):
            raise ParseError("JSON nested more than 1,024 levels deep") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("the body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_float=_float, parse_int=_int, parse_constant=Unrepresentable)
    except RecursionError:
        raise ParseError("JSON nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ParseError(f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None


class LimitedJSONParser(BaseParser):
    """``application/json`` with a size limit, enforced before the body is read whole.

    DRF reads the request stream directly, bypassing Django's own size check, so the limit
    (``DATA_UPLOAD_MAX_MEMORY_SIZE``) is enforced here, also for bodies without a
    Content-Length.
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[Any] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(too_large_message())
        if stream is None:
            raise ParseError("the body is empty; send a JSON object")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(too_large_message())
        return parse_json(body)
