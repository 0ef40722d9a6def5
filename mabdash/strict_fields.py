"""Serializer fields that take JSON types as they are.

DRF's fields are lenient — a ``CharField`` turns ``0`` into ``"0"``, a ``FloatField`` takes
``"0.5"`` — which would make the API accept bodies its OpenAPI schema calls invalid. These
raise a clear error instead.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import serializers

from mabdash.inputs import json_problem, storable_text

MAX_ID = 2**63 - 1


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string.", "unstorable": "{problem}."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("not_a_string")
        problem = storable_text(data)
        if problem:
            self.fail("unstorable", problem=problem.capitalize())
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictJsonField(serializers.DictField):
    """A free-form JSON object, bounded in depth and size, every string storable, every number finite."""

    default_error_messages = {"bad_json": "{problem}."}

    def __init__(self, *, max_depth: int = 10, max_bytes: int = 65_536, **kwargs: Any) -> None:
        self.max_depth, self.max_bytes = max_depth, max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        problem = json_problem(data, self.max_depth)
        if problem is None and len(orjson.dumps(data)) > self.max_bytes:
            problem = f"must be at most {self.max_bytes} bytes of JSON"
        if problem:
            self.fail("bad_json", problem=problem[0].upper() + problem[1:])
        return data


def IdField(**kwargs: Any) -> StrictIntegerField:
    """A database id: a positive 64-bit integer."""
    return StrictIntegerField(min_value=1, max_value=MAX_ID, **kwargs)
