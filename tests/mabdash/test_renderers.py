"""The API's JSON renderer encodes what DRF's did, the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from mabdash.renderers import FastJSONRenderer


def test_the_bytes_mean_what_drfs_renderer_said():
    data = {
        "when": datetime(2026, 12, 2, 12, 0, 0, 123000, tzinfo=UTC),
        "detail": gettext_lazy("Not found."),
        "amount": Decimal("1.25"),
        "mean": np.float64(0.5),
        "counts": np.array([1, 2]),
        "name": "modèle ✓",
        1: "integer key",
        "results": [{"index": i, "status": "accepted"} for i in range(3)],
    }
    fast = FastJSONRenderer().render(data)
    assert json.loads(fast) == json.loads(JSONRenderer().render(data))
    assert b'"when":"2026-12-02T12:00:00.123000Z"' in fast
    assert "modèle ✓".encode() in fast  # UTF-8, not \\u escapes


def test_what_orjson_refuses_falls_back_and_nothing_becomes_empty():
    huge = {"value": 2**70}
    assert FastJSONRenderer().render(huge) == JSONRenderer().render(huge) == b'{"value":1180591620717411303424}'
    assert FastJSONRenderer().render(None) == b""
    assert FastJSONRenderer().render({"a": 1}, "application/json; indent=2") == b'{\n  "a": 1\n}'
