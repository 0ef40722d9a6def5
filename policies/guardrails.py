"""Guardrail settings: defaults, merging and validation (plain Python, no Django).

An experiment stores its guardrails as a partial JSON object; anything left out takes the
project's defaults below. The relative rule and the change and shortfall detectors need rewards in
[0, 1] (binary and bounded experiments); for real-valued rewards only the floor and
Page–Hinkley apply (scale their thresholds with the reward range).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from policies.change import MIN_REFERENCE, THRESHOLD

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    # Recent rewards per arm the absolute floor looks at.
    "window": 200,
    # The hard floor: acts at once whatever the rollback mode.
    "floor": {"enabled": True, "threshold": 0.01, "min_samples": 50},
    # Anytime-valid: P(ever rolling back an arm of an experiment whose arms are equal) ≤ alpha.
    "relative": {"enabled": True, "alpha": 0.005, "margin": 0.0, "min_samples": 50},
    # A drop against the arm's own history (Bernoulli GLR); ≤ 0.5 % of stationary arms
    # alarm within 20,000 rewards at this threshold.
    "change": {"enabled": True, "threshold": THRESHOLD, "min_reference": MIN_REFERENCE},
    # The change test with the other active arms' rewards over the same period added to the
    # reference: fast on early breaks; also rolls back an arm worse than the others.
    "shortfall": {"enabled": True, "threshold": THRESHOLD, "min_reference": MIN_REFERENCE},
    # The first release's change detector, off by default (see policies.legacy_detectors).
    "page_hinkley": {"enabled": False, "delta": 0.02, "threshold": 60.0, "min_samples": 30},
    # veto_window mode: proposals are applied after this many minutes unless vetoed.
    "veto_minutes": 10,
    # Pending requests (four-eyes, approval mode) lapse after this many minutes.
    "request_ttl_minutes": 60,
}

_NUMBERS = {
    "window": (1, 100_000, int),
    "veto_minutes": (0, 10_080, float),
    "request_ttl_minutes": (1, 43_200, float),
    "floor.threshold": (-math.inf, math.inf, float),
    "floor.min_samples": (1, 1_000_000, int),
    "relative.alpha": (1e-9, 0.5, float),
    "relative.margin": (0, 1, float),
    "relative.min_samples": (1, 1_000_000, int),
    "change.threshold": (1, 1_000, float),
    "change.min_reference": (1, 1_000_000, int),
    "shortfall.threshold": (1, 1_000, float),
    "shortfall.min_reference": (1, 1_000_000, int),
    "page_hinkley.delta": (0, math.inf, float),
    "page_hinkley.threshold": (1e-9, math.inf, float),
    "page_hinkley.min_samples": (1, 1_000_000, int),
}


def validate_guardrails(raw: Any) -> dict[str, Any]:
    """Check a partial guardrail object; return it unchanged or raise ValueError naming the field."""
    if not isinstance(raw, dict):
        raise ValueError("guardrails: must be a JSON object")
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise ValueError(f"guardrails.{key}: unknown setting; expected one of {', '.join(DEFAULTS)}")
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"guardrails.{key}: must be a JSON object")
            for sub, sub_value in value.items():
                if sub not in DEFAULTS[key]:
                    raise ValueError(f"guardrails.{key}.{sub}: unknown setting")
                _check(f"{key}.{sub}", sub_value)
        else:
            _check(key, value)
    return raw


def _check(path: str, value: Any) -> None:
    if path.endswith("enabled"):
        if not isinstance(value, bool):
            raise ValueError(f"guardrails.{path}: must be true or false")
        return
    low, high, kind = _NUMBERS[path]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"guardrails.{path}: must be a number")
    if kind is int and value != int(value):
        raise ValueError(f"guardrails.{path}: must be an integer")
    if not low <= value <= high:
        raise ValueError(f"guardrails.{path}: must be in [{low}, {high}]")


def guardrail_config(partial: Mapping[str, Any] | None) -> dict[str, Any]:
    """A partial guardrail object (as stored) with the defaults filled in.

    Parameters
    ----------
    partial : mapping or None
        Settings that differ from :data:`DEFAULTS` (already validated).

    Returns
    -------
    dict
        Every setting, nested like :data:`DEFAULTS`.
    """
    merged = copy.deepcopy(DEFAULTS)
    for key, value in (partial or {}).items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged
