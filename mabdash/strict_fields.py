"""Serializer fields that take JSON types as they are.

DRF's fields are lenient — a ``CharField`` turns ``0`` into ``"0"``, a ``FloatField`` takes
``"0.5"`` — which would make the API accept bodies its OpenAPI schema calls invalid. These
raise a clear error instead.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_ID = 2**63 - 1


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("not_a_string")
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


def IdField(**kwargs) -> StrictIntegerField:
    """A database id: a positive 64-bit integer."""
    return StrictIntegerField(min_value=1, max_value=MAX_ID, **kwargs)
