"""The API's JSON renderer: DRF's output, encoded with orjson.

A batch answer carries one outcome per item (up to 10,000); the standard library's encoder
spent several milliseconds on each. What orjson does not encode itself (datetimes, so they
keep DRF's ``…Z`` form; lazy translations, decimals, numpy values) goes through DRF's own
encoder, and anything orjson refuses (an integer beyond 64 bits) falls back to DRF's
renderer, so the bytes mean the same as before.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_fallback = JSONEncoder().default


class FastJSONRenderer(JSONRenderer):
    """``application/json`` like DRF's renderer (compact, UTF-8), faster."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=_fallback, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
